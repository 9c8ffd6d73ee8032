#!/bin/sh
# greet: says hello (built from src/ by the builder stage)
set -eu
