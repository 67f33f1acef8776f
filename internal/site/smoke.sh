# Proves the deployment: fetches $URL until it serves a body whose SHA-256 is
# $EXPECTED_SHA256 (the page in app/), at most $ATTEMPTS times, 0.1 s apart.
# Runs under /bin/sh on the machine that runs `pulumi up`; needs curl or wget.
set -u
body=$(mktemp)
trap 'rm -f "$body"' EXIT

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 -o "$body" "$URL" 2>/dev/null
  else
    wget -q -T 2 -O "$body" "$URL" 2>/dev/null
  fi
}

digest() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$body" | cut -d' ' -f1
  else
    shasum -a 256 "$body" | cut -d' ' -f1
  fi
}

got=none
i=0
while [ "$i" -lt "$ATTEMPTS" ]; do
  i=$((i + 1))
  if fetch; then
    got=$(digest)
    if [ "$got" = "$EXPECTED_SHA256" ]; then
      echo "custom page served at $URL (sha256 $got, attempt $i)"
      exit 0
    fi
  fi
  sleep 0.1
done
echo "the custom page is not served at $URL after $ATTEMPTS attempts: want sha256 $EXPECTED_SHA256, last got $got" >&2
exit 1
