# cara — plain Makefile. `make`, `make SANITIZE=1`, `make test`, `make run`, `make bench`.
CC       ?= cc
SERVICES := intake triage booking billing national
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -fno-strict-aliasing
CPPFLAGS += -Iinclude -Ibuild/gen -Itests/support -Itests/integration $(patsubst %,-Iservices/%,$(SERVICES)) $(shell pkg-config --cflags libzmq libprotobuf-c jansson libsodium 2>/dev/null) \
            -I$(shell pg_config --includedir)
LDLIBS   += $(shell pkg-config --libs libzmq libprotobuf-c jansson libsodium) -lpq -lm -pthread
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

GEN      := build/gen
OBJ      := build/obj
PROTOS   := $(wildcard proto/*.proto)
PB_C     := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PB_H     := $(PB_C:.c=.h)
COMMON   := $(wildcard common/*.c)
LIB_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(COMMON)) $(patsubst %.c,$(OBJ)/%.o,$(PB_C)) $(OBJ)/$(GEN)/core_sql.o $(OBJ)/$(GEN)/version.o
BINS     := $(patsubst %,bin/cara-%,$(SERVICES)) bin/cara
CLIENT   := $(wildcard client/*.c)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
INT_SRC  := $(wildcard tests/integration/test_*.c tests/fault/test_*.c tests/security/test_*.c)
SUPPORT  := $(wildcard tests/support/*.c)
UNIT_BIN := $(patsubst %.c,build/%,$(UNIT_SRC))
INT_BIN  := $(patsubst %.c,build/%,$(INT_SRC))
TEST_HELPERS := $(patsubst %.c,build/%,$(wildcard tests/integration/helper_*.c))
SVC_LIBS := $(patsubst %,build/lib%.a,$(SERVICES))

.PHONY: all test unit integration run bench fuzz clean format check tests-build FORCE
.SECONDARY:

all: $(BINS)

# Rebuild everything when the flags change (e.g. SANITIZE=1 after a plain build).
build/flags.stamp: FORCE
	@mkdir -p build
	@echo '$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS)' > $@
FORCE:

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

build/embed: tools/embed.c
	@mkdir -p build
	$(CC) -std=c11 -Wall -Wextra -Werror -O1 -o $@ $<

# Rewritten whenever the migrations differ, also when one was removed (like the services').
$(GEN)/core_sql.c: build/embed FORCE
	@mkdir -p $(GEN)
	@build/embed core $(sort $(wildcard common/sql/*.sql)) > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

# The version lives in one generated file, rewritten only when it changes: a new commit
# relinks, it does not rebuild everything.
$(GEN)/version.c: FORCE
	@mkdir -p $(GEN)
	@printf '#include "cara/version.h"\nconst char cara_version[] = "%s";\n' '$(VERSION)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(GEN)/%_sql.c: build/embed FORCE
	@mkdir -p $(GEN)
	@build/embed $* $(sort $(wildcard services/$*/sql/*.sql)) > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(OBJ)/%.o: %.c build/flags.stamp $(PB_H)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

build/libcara.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Each service's modules (everything but main.c) form a library that unit tests can link.
define SERVICE_RULES
build/lib$(1).a: $$(patsubst %.c,$(OBJ)/%.o,$$(filter-out services/$(1)/main.c,$$(wildcard services/$(1)/*.c))) $(OBJ)/$(GEN)/$(1)_sql.o
	@rm -f $$@
	ar rcs $$@ $$^
bin/cara-$(1): $(OBJ)/services/$(1)/main.o build/lib$(1).a build/libcara.a
	@mkdir -p bin
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call SERVICE_RULES,$(s))))

bin/cara: $(patsubst %.c,$(OBJ)/%.o,$(CLIENT)) build/libcara.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/libcaratest.a: $(patsubst %.c,$(OBJ)/%.o,$(SUPPORT))
	@rm -f $@
	ar rcs $@ $^

build/tests/%: $(OBJ)/tests/%.o build/libcaratest.a $(SVC_LIBS) build/libcara.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< build/libcaratest.a $(SVC_LIBS) build/libcara.a $(LDLIBS) -lcmocka

tests-build: $(BINS) $(UNIT_BIN) $(INT_BIN) $(TEST_HELPERS)

# The test command (README): unit tests, then integration tests against a throwaway
# PostgreSQL cluster and real sockets, each test binary in its own process.
test: tests-build
	tests/run.sh $(UNIT_BIN) -- $(INT_BIN)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} tests/fuzz/run.sh

# Longer fuzzing runs: make fuzz FUZZ_SECONDS=600
fuzz: $(BINS)
	tests/fuzz/run.sh

# Run one test binary (or a few): make check T="build/tests/integration/test_stream"
check: $(BINS) $(TEST_HELPERS) $(T)
	tests/run.sh $(filter build/tests/unit/%,$(T)) -- $(filter-out build/tests/unit/%,$(T))

run: $(BINS)
	deploy/local-run.sh

bench: $(BINS) $(TEST_HELPERS)
	bench/run.sh

format:
	clang-format -i $(shell find common include services client tests tools -name '*.[ch]')

clean:
	rm -rf build bin

-include $(shell find build/obj -name '*.d' 2>/dev/null)
