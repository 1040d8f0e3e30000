# common/ → libkp.a, shared by every program and test binary.
GEN_SCHEMA  := $(BUILD)/gen/schema_sql.c
SCHEMA_SQL  := $(sort $(wildcard schema/*.sql))
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(COMMON_SRCS)) $(BUILD)/gen/schema_sql.o
LIBKP       := $(BUILD)/libkp.a
ALL_OBJS    += $(COMMON_OBJS)

$(GEN_SCHEMA): $(SCHEMA_SQL) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $@ $(SCHEMA_SQL)

$(BUILD)/gen/schema_sql.o: $(GEN_SCHEMA)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBKP): $(COMMON_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
