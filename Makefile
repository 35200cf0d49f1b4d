# Skynet for Swift. The two commands of the README:
#   make run    the main job: `sky run` with the example routes on 127.0.0.1:8080
#   make test   every test (installs what it needs first)

.PHONY: run test bench soak broker-cycles build docs install clean

PREFIX ?= /usr/local

run:
	scripts/run.sh $(ARGS)

test:
	scripts/test.sh $(ARGS)

bench:
	scripts/bench.sh

soak:
	scripts/soak.sh

# The STOMP broker SIGKILLed mid-stream CYCLES times (default 50); every message accounted for.
broker-cycles:
	scripts/bootstrap.sh
	scripts/services.sh up
	swift build --product sky
	.services/venv/bin/python scripts/broker-cycles.py --cycles $${CYCLES:-50}

build:
	scripts/bootstrap.sh
	swift build

install:
	scripts/install.sh $(PREFIX)

docs:
	swift build
	scripts/docs.sh

clean:
	rm -rf .build .skynet
