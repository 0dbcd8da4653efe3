# API reference: `make docs` writes HTML to build/docs/ with LDoc (Markdown comments,
# rendered by lua-discount), then checks it the way a reader sees it: screenshots of
# the index, the methods page and one method, drawn by headless Chromium, in
# build/docs/*.png. It installs the `docs` package set alone (tools/deps docs), not
# the linters.
#
# The methods page is written from the catalog (lua/quecapi/endpoints.lua) and the
# meanings of its parameters (lua/quecapi/endpoint_docs.lua) through quecapi.catalog,
# which loads the C core: the core for Lua 5.4 is built first.
#
# It fails when a module with an @module tag is missing from config.ld (the command
# line tool and the fake cloud excepted: they are not API), when LDoc reports
# anything, or when a screenshot is not written.

DOCS_SRC := build/docs-src
DOCS_METHODS := build/docs/modules/quecapi.methods.html

.PHONY: docs deps-docs

deps-docs:
	@sh tools/deps docs

docs: deps-docs
	@$(MAKE) --no-print-directory LUA=lua5.4 all
	@missing=""; \
	for f in $$(grep -rl --include='*.lua' -e '@module' lua | grep -v -e '^lua/quecapi/fakecloud/' -e '^lua/quecapi/cli/' | sort); do \
	    grep -q "\"$$f\"" config.ld || missing="$$missing $$f"; \
	done; \
	if [ -n "$$missing" ]; then echo "make docs: modules missing from config.ld:$$missing" >&2; exit 1; fi
	@mkdir -p $(DOCS_SRC)
	lua5.4 tools/catalog-doc.lua > $(DOCS_SRC)/methods.lua.tmp
	@mv $(DOCS_SRC)/methods.lua.tmp $(DOCS_SRC)/methods.lua
	@rm -rf build/docs
	ldoc . > $(DOCS_SRC)/ldoc.log 2>&1 || { cat $(DOCS_SRC)/ldoc.log >&2; exit 1; }
	@if grep -v -e '^reading configuration from ' -e '^output written to ' $(DOCS_SRC)/ldoc.log >&2; then \
	    echo "make docs: LDoc reported the problems above" >&2; exit 1; \
	fi
	@# LDoc's fixed layout is 700px wide: the pages' diagrams and parameter lists want more
	@printf '\n#content { width: auto; max-width: 960px; }\n' >> build/docs/ldoc_fixed.css
	sh tools/docs-screenshot build/docs/index.html build/docs/index.png 1280 1400
	sh tools/docs-screenshot $(DOCS_METHODS) build/docs/methods.png 1280 1800
	sh tools/docs-screenshot '$(DOCS_METHODS)#client:batch_control_device' build/docs/method.png 1280 1400
	@echo "API reference in build/docs/index.html (screenshots: build/docs/*.png)"
