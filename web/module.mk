# web/ → web/dist: the page kline-streamer serves (--web-root). `make web` is cheap when
# up to date; `npm ci` runs only when the lock file changed (works offline from the npm cache).
WEB_PAGE := index.html app.js style.css
WEB_LWC  := web/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js
WEB_DIST := $(addprefix web/dist/,$(WEB_PAGE)) web/dist/lightweight-charts.standalone.production.js

.PHONY: web
web: $(WEB_DIST)

$(WEB_LWC): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	@touch $@

$(addprefix web/dist/,$(WEB_PAGE)): web/dist/%: web/%
	@mkdir -p web/dist
	cp $< $@

web/dist/lightweight-charts.standalone.production.js: $(WEB_LWC)
	@mkdir -p web/dist
	cp $< $@
