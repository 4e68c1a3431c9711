# The same verbs as package.json, plus the two a newcomer needs: `make up` and `make test`.
.PHONY: up test install services generate lint typecheck check build bench clean

# Runs the whole system locally (every service as its own process).
up: install services build
	node dist/scripts/start.js

# Everything CI checks: contracts, lint, types, generated code, then the full test suite.
test: install services check
	npm test

install:
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci; fi

services:
	bash scripts/ensure-services.sh

generate:
	npm run generate

lint:
	npm run lint

typecheck:
	npm run typecheck

check:
	npm run lint
	npm run typecheck
	npm run generate:check
	npm run breaking

build:
	npm run build

bench: install services build
	npm run bench

clean:
	rm -rf dist
