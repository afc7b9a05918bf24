# syntax=docker/dockerfile:1
# `zhifu serve` for containers (Cloud Run, Knative, Kubernetes): a static
# musl binary on distroless/static (CA certificates and /tmp, nothing else;
# runs as non-root). Configuration comes from the environment at run time
# (see README "Deploy"); the image holds no secret.
#
#   docker build -t zhifu .
#   docker run -p 8080:8080 -e PORT=8080 -e ZHIFU_DATABASE_URL=postgres://… \
#     -e ALIPAY_APP_ID=… -e ALIPAY_APP_PRIVATE_KEY=… -e ALIPAY_PUBLIC_KEY=… \
#     -e ZHIFU_PUBLIC_URL=https://… -e ZHIFU_API_KEY=… zhifu
#
# Migrations: run `docker run … zhifu migrate` once per release (a Job or an
# init container); the server does not migrate unless ZHIFU_AUTO_MIGRATE=true.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked --target x86_64-unknown-linux-musl -p zhifu \
 && cp target/x86_64-unknown-linux-musl/dist/zhifu /zhifu

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /zhifu /zhifu
# Cloud Run and Knative set PORT; 8080 is their convention elsewhere.
ENV PORT=8080 \
    ZHIFU_AUTO_MIGRATE=false
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/zhifu"]
CMD ["serve"]
