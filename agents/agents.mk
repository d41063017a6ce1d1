# Reference agents (DESIGN §9a): libagent (legacy ZMQ health protocol +
# sd_notify), stub-agent, registry, the Python example. Agents may link
# libzmq; ainit itself must not (DESIGN §11a).
AGENT_DIR     := $(BUILD)/agents
AGENT_CFLAGS  := $(CSTD) $(WARN) $(OPT) -fno-strict-aliasing -Iagents/libagent -pthread
AGENT_LIBS    := $(shell pkg-config --libs libzmq 2>/dev/null || echo -lzmq) -pthread
LIBAGENT      := $(AGENT_DIR)/libagent.a
AGENT_BINS    := $(AGENT_DIR)/stub-agent $(AGENT_DIR)/registry $(AGENT_DIR)/example_agent.py

.PHONY: agents
agents: $(AGENT_BINS)
all: agents
HOST_TEST_DEPS += agents

$(AGENT_DIR)/obj/%.o: agents/libagent/%.c agents/libagent/agent.h
	@mkdir -p $(@D)
	$(CC) $(AGENT_CFLAGS) -c $< -o $@

$(LIBAGENT): $(AGENT_DIR)/obj/agent.o
	$(AR) rcs $@ $^

$(AGENT_DIR)/stub-agent: agents/stub-agent/stub-agent.c $(LIBAGENT)
	$(CC) $(AGENT_CFLAGS) -o $@ $^ $(AGENT_LIBS)

$(AGENT_DIR)/registry: agents/registry/registry.c $(LIBAGENT)
	$(CC) $(AGENT_CFLAGS) -o $@ $^ $(AGENT_LIBS)

$(AGENT_DIR)/example_agent.py: agents/python/example_agent.py
	@mkdir -p $(@D)
	install -m 0755 $< $@
