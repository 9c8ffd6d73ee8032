# The README's commands. meson + ninja do the real work; this file only makes
# "make", "make demo", "make check" and "make bench" work on a fresh machine.
BUILD ?= build
SAN_BUILD ?= build-sanitize
NINJA ?= ninja

.PHONY: all deps build demo check check-sanitize bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh build

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@$(NINJA) -C $(BUILD)

demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@examples/demo.sh $(BUILD)/cairn

check:
	@scripts/install-deps.sh check
	@$(MAKE) --no-print-directory build
	@tests/run.sh --build $(BUILD) --suites unit,e2e,fuzz

# Unit and e2e suites again under AddressSanitizer and UBSan.
check-sanitize:
	@scripts/install-deps.sh check
	@[ -f $(SAN_BUILD)/build.ninja ] || meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@$(NINJA) -C $(SAN_BUILD)
	@tests/run.sh --build $(SAN_BUILD) --suites unit,e2e

fuzz:
	@scripts/install-deps.sh check
	@tests/fuzz/run.sh

bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/run.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD) build-fuzz
