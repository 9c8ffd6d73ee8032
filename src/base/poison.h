/* Included before every source file (meson: -include): functions STYLE.md
 * forbids become compile errors. The system headers that declare them come
 * first so their declarations are not themselves poisoned. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC poison strcpy strcat sprintf vsprintf gets atoi atol
