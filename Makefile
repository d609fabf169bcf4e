# socketpool: five small programs for network plumbing in shell scripts.
.POSIX:

PREFIX    = /usr/local
MANPREFIX = $(PREFIX)/share/man
DESTDIR   =
CC        = cc
OPT       = -O2 -g
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
# Debian's hardening flags (dpkg-buildflags with hardening=+all), in every build.
HARDEN    = -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection -fPIE
LDHARDEN  = -Wl,-z,relro,-z,now
PIE       = -pie
CFLAGS    = -std=c11 -D_XOPEN_SOURCE=700 $(OPT) $(WARN) $(HARDEN)
LDFLAGS   = $(LDHARDEN)
LDLIBS    =
# Programs linked statically, and the flag that does it. An idle binding
# touches code spread over all of a shared libc, and every page touched
# counts in its resident set: ~1.6 MiB dynamic, 810-930 KiB static (issue 4,
# the BUGS section of bind-input.1). `make LDSTATIC=` links them
# dynamically; the sanitizer build of `make check` must (ASan cannot link
# statically). ld's warnings about getaddrinfo in a static program are the
# caveat told in bind-output.1.
STATIC    = bind-input bind-output
LDSTATIC  = -static-pie
# Where objects and programs go; the sanitizer build of `make check` uses another pair.
BUILD     = build
BIN       = bin

PROGS   = socket bind-input bind-output pool master
LIBSRC  = $(sort $(wildcard src/lib/*.c))
LIBOBJ  = $(LIBSRC:src/lib/%.c=$(BUILD)/lib/%.o)
TOOLSRC = $(sort $(wildcard tests/tools/*.c))
EXIST   = $(foreach p,$(PROGS),$(if $(wildcard src/$(p).c),$(p)))
TARGETS = $(EXIST:%=$(BIN)/%)
MANS    = $(sort $(wildcard man/*.1 man/*.7))

all: $(TARGETS)

$(BUILD)/lib/%.o: src/lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libsp.a: $(LIBOBJ)
	rm -f $@
	ar rcs $@ $(LIBOBJ)

# Relinked when the Makefile changes: the link flags (LDSTATIC) live here.
$(BIN)/%: $(BUILD)/%.o $(BUILD)/libsp.a Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $(if $(and $(filter $*,$(STATIC)),$(LDSTATIC)),$(LDSTATIC),$(PIE)) \
		-o $@ $< $(BUILD)/libsp.a $(LDLIBS)

# Small programs the tests and benchmarks drive (free ports, load, activation),
# and dynamically linked twins of the static programs: valgrind's memcheck
# sees malloc only in a dynamic program (tests/valgrind.bats).
tools: $(TOOLSRC:tests/tools/%.c=tests/bin/%) $(addprefix tests/bin/dyn/,$(filter $(STATIC),$(EXIST)))

tests/bin/dyn/%: $(BUILD)/%.o $(BUILD)/libsp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $(PIE) -o $@ $< $(BUILD)/libsp.a $(LDLIBS)

tests/bin/%: tests/tools/%.c $(BUILD)/libsp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -pthread -Isrc -o $@ $< $(BUILD)/libsp.a

check:
	sh scripts/check.sh

# gcc's static analyzer over every source file; any finding fails (make check runs it).
ANALYZE = gcc -std=c11 -D_XOPEN_SOURCE=700 -O2 $(WARN) -fanalyzer
analyze:
	@for f in src/*.c src/lib/*.c; do $(ANALYZE) -c -o /dev/null $$f || exit 1; done
	@echo "analyze: clean"

# Assertions that cannot fail (a negation, or tests joined by &&, that is not the
# last command of a test or helper).
lint-tests:
	sh scripts/lint-tests.sh tests/*.bats tests/*.bash

demo: all
	sh scripts/demo.sh

bench: all tools
	sh scripts/bench.sh

# libFuzzer targets (clang's fuzzer runtime): the pool protocol parser, line
# assembly, the output queue with retention, and the encrypted channel's
# handshake and record parser. `make fuzz` runs each for FUZZTIME seconds;
# `make fuzz-check` (a step of make check) for FUZZCHECK seconds, so that a
# crash fails CI. New inputs go to build/fuzz/corpus-NAME, seeds stay as they are.
FUZZCC    = clang
FUZZTIME  = 60
FUZZCHECK = 8
FUZZSAN   = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZERS   = proto lines queue noise
FUZZSRC_proto = src/lib/proto.c src/lib/sha256.c src/lib/io.c src/lib/mem.c src/lib/name.c
FUZZSRC_lines = src/lib/lines.c src/lib/mem.c
FUZZSRC_queue = src/lib/queue.c src/lib/mem.c
FUZZSRC_noise = src/lib/noise.c src/lib/record.c src/lib/aead.c src/lib/chacha20.c \
		src/lib/chacha20_simd.c src/lib/poly1305.c src/lib/poly1305_simd.c \
		src/lib/cpu.c src/lib/x25519.c src/lib/hkdf.c src/lib/sha256.c src/lib/mem.c
FUZZSEEDS_proto = tests/fuzz/seeds
FUZZSEEDS_lines = tests/fuzz/lines-seeds
FUZZSEEDS_queue = tests/fuzz/queue-seeds
FUZZSEEDS_noise = tests/fuzz/noise-seeds

build/fuzz/%: tests/fuzz/%.c $(LIBSRC)
	@mkdir -p $(@D)
	$(FUZZCC) -std=c11 -D_XOPEN_SOURCE=700 -g -O1 $(WARN) $(FUZZSAN) -Isrc -o $@ $< $(FUZZSRC_$*)

fuzz:
	sh scripts/deps.sh fuzz
	$(MAKE) -s fuzz-run T=$(FUZZTIME)

fuzz-check:
	$(MAKE) -s fuzz-run T=$(FUZZCHECK)

fuzz-run: $(FUZZERS:%=build/fuzz/%)
	@$(foreach f,$(FUZZERS),mkdir -p build/fuzz/corpus-$(f); echo "fuzz $(f): $(T) s"; \
	if ! build/fuzz/$(f) -max_total_time=$(T) -max_len=70000 build/fuzz/corpus-$(f) \
		$(FUZZSEEDS_$(f)) >build/fuzz/$(f).log 2>&1; then \
		tail -40 build/fuzz/$(f).log; echo "fuzz $(f): FAILED"; exit 1; fi; \
	grep -h "^Done" build/fuzz/$(f).log;)

install: all
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANPREFIX)/man1 $(DESTDIR)$(MANPREFIX)/man7
	for p in $(EXIST); do cp -f $(BIN)/$$p $(DESTDIR)$(PREFIX)/bin/$$p; \
		chmod 755 $(DESTDIR)$(PREFIX)/bin/$$p; done
	for m in $(MANS); do s=$${m##*.}; cp -f $$m $(DESTDIR)$(MANPREFIX)/man$$s/; \
		chmod 644 $(DESTDIR)$(MANPREFIX)/man$$s/$${m##*/}; done

uninstall:
	for p in $(PROGS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$p; done
	for m in $(MANS); do s=$${m##*.}; rm -f $(DESTDIR)$(MANPREFIX)/man$$s/$${m##*/}; done

clean:
	rm -rf build bin tests/bin

.PHONY: all tools check analyze lint-tests demo bench fuzz fuzz-check fuzz-run install uninstall clean
.PRECIOUS: $(BUILD)/%.o $(BUILD)/lib/%.o

-include $(wildcard $(BUILD)/*.d $(BUILD)/lib/*.d)
