# klinepipe — one image with all four programs.
# Build stage: compilers, -dev packages and npm (for the web page's chart library).
FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates \
      librdkafka-dev libwebsockets-dev libpq-dev libjansson-dev libcurl4-openssl-dev zlib1g-dev \
      nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" programs web \
 && make install PREFIX=/opt/klinepipe

# Runtime stage: only the shared libraries the programs link against, and the lws
# event-loop plugins lws loads at run time for the streamer's --event-loop uv and ev
# (libwebsockets-evlib-uv, -ev). compose.bats checks this list against what the programs
# link (ldd), so a new library cannot go missing from the image unnoticed.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libwebsockets17 libwebsockets-evlib-uv libwebsockets-evlib-ev libuv1 libev4 libpq5 libjansson4 libcurl4 zlib1g \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin klinepipe
COPY --from=build /opt/klinepipe /opt/klinepipe
ENV PATH=/opt/klinepipe/bin:$PATH \
    STREAMER_WEB_ROOT=/opt/klinepipe/share/klinepipe/web \
    HEALTH_PORT=9100
USER klinepipe
# Every program answers /healthz: the streamer on its HTTP port, the others on --metrics-port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${HEALTH_PORT}/healthz" || exit 1
CMD ["kline-streamer", "--help"]
