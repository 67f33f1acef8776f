#!/usr/bin/env bash
# Builds an offline stand-in for the official nginx Alpine base image from this host's
# nginx (Debian's nginx-light) and busybox-static, with the official image's layout:
# /etc/nginx/nginx.conf including conf.d/*.conf, /usr/share/nginx/html, /var/cache/nginx,
# logs linked to stdout/stderr, user nginx (uid 101), busybox sh and wget, STOPSIGNAL SIGQUIT.
# Tests and benchmarks use it where no registry can be reached; elsewhere the real base is pulled.
# app/Dockerfile's config-check stage runs its nginx -t as root at build time: that needs the
# user nobody (nginx's default user when run as root) and a writable /tmp, as the real base has.
#
# usage: scripts/standin-base.sh [TAG [ARCH]]   (default TAG: custom-nginx-test/nginx-standin:local)
# ARCH is a Debian architecture other than this host's (arm64): the image is then built for
# linux/ARCH from Debian's ARCH packages, fetched with apt-get download (first:
# dpkg --add-architecture ARCH && apt-get update), with no emulation.
# Prints the tag it built. Needs: docker engine, nginx, busybox (static), ldd.
set -euo pipefail

tag=${1:-custom-nginx-test/nginx-standin:local}
host_arch=$(dpkg --print-architecture)
arch=${2:-$host_arch}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
busybox_bin=$(command -v busybox || echo /bin/busybox)
for need in "$nginx_bin" "$busybox_bin" /etc/nginx/mime.types; do
  [ -e "$need" ] || { echo "standin-base: missing $need (apt-get install -y nginx-light busybox-static)" >&2; exit 1; }
done
if ldd "$busybox_bin" >/dev/null 2>&1; then
  echo "standin-base: $busybox_bin is dynamically linked; install busybox-static" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,usr/sbin,etc/nginx/conf.d,usr/share/nginx/html,var/cache/nginx,var/log/nginx,var/lib/nginx,run,tmp}
chmod 1777 "$root/tmp"
ln -s /run "$root/var/run"

if [ "$arch" = "$host_arch" ]; then
  # nginx and exactly the shared libraries it links.
  cp "$nginx_bin" "$root/usr/sbin/nginx"
  ldd "$nginx_bin" | grep -oE '/[^ ]+' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  arch_busybox=$busybox_bin
else
  # Debian's ARCH nginx, its libraries (the lib* packages it depends on) and busybox:
  # unpacked, never run here.
  debs=$work/debs unpacked=$work/unpacked
  mkdir -p "$debs" "$unpacked"
  packages=("nginx:$arch" "busybox-static:$arch" "libgcc-s1:$arch")
  while read -r lib; do
    packages+=("$lib:$arch")
  done < <(apt-cache depends --no-recommends --no-suggests "nginx:$arch" | sed -nE 's/^ *Depends: ([a-z0-9.+-]*lib[a-z0-9.+-]*).*/\1/p' | sed 's/:.*//' | sort -u)
  if ! (cd "$debs" && apt-get download -qq "${packages[@]}" >/dev/null 2>&1); then
    echo "standin-base: cannot download Debian's $arch nginx; first: dpkg --add-architecture $arch && apt-get update" >&2
    exit 1
  fi
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$unpacked"; done
  cp "$unpacked/usr/sbin/nginx" "$root/usr/sbin/nginx"
  for dir in lib usr/lib; do
    [ -d "$unpacked/$dir" ] && mkdir -p "$root/$dir" && cp -a "$unpacked/$dir/." "$root/$dir/"
  done
  arch_busybox=$unpacked/bin/busybox
fi

# busybox for sh, wget and friends, as Alpine has them (the applets this host's lists).
cp "$arch_busybox" "$root/bin/busybox"
for applet in $("$busybox_bin" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

cp /etc/nginx/mime.types "$root/etc/nginx/mime.types"
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nginx:x:101:nginx
nogroup:x:65534:
GROUP
ln -sf /dev/stdout "$root/var/log/nginx/access.log"
ln -sf /dev/stderr "$root/var/log/nginx/error.log"

# The official image's stock configuration.
cat >"$root/etc/nginx/nginx.conf" <<'CONF'
user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
CONF
cat >"$root/etc/nginx/conf.d/default.conf" <<'CONF'
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
CONF
echo '<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>' >"$root/usr/share/nginx/html/index.html"
echo '<!DOCTYPE html><html><head><title>Error</title></head><body><h1>An error occurred.</h1></body></html>' >"$root/usr/share/nginx/html/50x.html"

cat >"$work/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
DOCKERFILE

DOCKER_BUILDKIT=0 docker build -q -t "$tag" --platform "linux/$arch" \
  --label org.opencontainers.image.description="offline stand-in for the official nginx Alpine image (tests only)" \
  "$work" >/dev/null
echo "$tag"
