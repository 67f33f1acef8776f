package engine

import (
	"strings"
	"testing"
)

func TestTLSFiles(t *testing.T) {
	files := TLSFiles("CERT", "KEY", "https://www.example.com:8443")
	modes := map[string]int64{}
	for _, f := range files {
		modes[f.Target()] = f.Mode
	}
	if modes["/run/tls/key.pem"] != 0o400 || modes["/run/tls/cert.pem"] != 0o444 || modes["/run/tls/site.conf"] != 0o444 {
		t.Errorf("modes %v: want the key readable by nginx's user alone", modes)
	}
	if want := "set $https_origin \"https://www.example.com:8443\";\ninclude /etc/nginx/https.conf;\n"; files[2].Content != want {
		t.Errorf("site.conf %q, want %q", files[2].Content, want)
	}
}

func TestTLSSHA256ChangesWithEveryFile(t *testing.T) {
	base := TLSSHA256(TLSFiles("CERT", "KEY", "https://a"))
	for name, other := range map[string][]File{
		"certificate": TLSFiles("CERT2", "KEY", "https://a"),
		"key":         TLSFiles("CERT", "KEY2", "https://a"),
		"origin":      TLSFiles("CERT", "KEY", "https://b"),
	} {
		if TLSSHA256(other) == base {
			t.Errorf("a new %s leaves the digest as it was", name)
		}
	}
	if strings.Contains(base, "KEY") || len(base) != 64 {
		t.Errorf("digest %q: want 64 hex digits", base)
	}
}

func TestRuntimeIDs(t *testing.T) {
	if uid, gid, err := Hardened.IDs(); err != nil || uid != 101 || gid != 101 {
		t.Errorf("Hardened.IDs() = %d, %d, %v; want 101, 101", uid, gid, err)
	}
	if _, _, err := (Runtime{User: "nginx"}).IDs(); err == nil {
		t.Error("a user name without uid:gid passed")
	}
}
