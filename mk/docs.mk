# API reference: `make docs` writes HTML to build/docs/ with LDoc (Debian lua-ldoc).
# The catalog's 124 operations are documented from lua/quecapi/endpoints.lua itself.

.PHONY: docs

docs: deps-tools all
	@mkdir -p build/docs-src
	lua5.4 tools/catalog-doc.lua > build/docs-src/methods.lua
	ldoc -q .
	@echo "API reference in build/docs/index.html"
