package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/testpki"
)

// tlsValues are a stack's keys for leaf, which ca issued, with ca trusted, over push=false.
func tlsValues(ca *testpki.CA, leaf testpki.Leaf, extra map[string]string) map[string]string {
	values := map[string]string{config.KeyPush: "false", config.KeyTLSCertificate: leaf.CertPEM,
		config.KeyTLSKey: leaf.KeyPEM, config.KeyTLSTrustedCA: ca.PEM}
	for k, v := range extra {
		values[k] = v
	}
	return values
}

var secretKey = map[string]bool{config.KeyTLSKey: true}

func TestLoadTLS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.IssueNow(t, "localhost", "127.0.0.1")
	for _, tt := range []struct {
		name    string
		extra   map[string]string
		wantURL string
	}{
		{name: "default port", wantURL: "https://localhost:8443/"},
		{name: "443 is left out of the url", extra: map[string]string{config.KeyHTTPSPort: "443"}, wantURL: "https://localhost/"},
		{name: "an address the certificate names", extra: map[string]string{config.KeySiteHost: "127.0.0.1"}, wantURL: "https://127.0.0.1:8443/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tlsValues(ca, leaf, tt.extra), secretKey, "")
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.TLS.Enabled() || string(cfg.TLS.Key) != leaf.KeyPEM || cfg.TLS.TrustedCA != strings.TrimSpace(ca.PEM) {
				t.Fatalf("TLS %+v: want the pair and the CA", cfg.TLS)
			}
			if got := cfg.URL(); got != tt.wantURL {
				t.Fatalf("URL() = %q, want %q", got, tt.wantURL)
			}
			if len(cfg.Warnings) != 0 {
				t.Fatalf("warnings %q for a certificate valid for 90 days", cfg.Warnings)
			}
		})
	}
}

func TestLoadWithoutTLSServesHTTP(t *testing.T) {
	cfg, err := load(t, map[string]string{config.KeyPush: "false"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Enabled() || cfg.URL() != "http://localhost:8080/" {
		t.Fatalf("TLS %+v, URL %q: want plain HTTP on hostPort", cfg.TLS, cfg.URL())
	}
}

func TestLoadWarnsOfACertificateAboutToExpire(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.Issue(t, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(5*24*time.Hour))
	cfg, err := load(t, tlsValues(ca, leaf, nil), secretKey, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "config tlsCertificate: expires in 5.0 days") {
		t.Fatalf("warnings %q: want one saying it expires in 5.0 days", cfg.Warnings)
	}
}

func TestLoadRefusesTLS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.IssueNow(t, "localhost")
	expired := ca.Issue(t, []string{"localhost"}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	future := ca.Issue(t, []string{"localhost"}, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour))
	other := testpki.NewCA(t, "someone else's CA")
	with := func(extra map[string]string) map[string]string { return tlsValues(ca, leaf, extra) }
	checkRefusals(t, []refusal{
		{name: "key in plain text", values: with(nil),
			wantErr: []string{"config tlsKey: is stored in plain text", "pulumi config set --secret tlsKey < key.pem"}},
		{name: "key of another certificate", values: with(map[string]string{config.KeyTLSKey: testpki.OtherKey(t)}), secret: secretKey,
			wantErr: []string{"config tlsKey: does not go with tlsCertificate (the private key does not match the leaf certificate's public key)", "fix:"}},
		{name: "expired", values: tlsValues(ca, expired, nil), secret: secretKey,
			wantErr: []string{"config tlsCertificate: expired on", "fix: renew it"}},
		{name: "not valid yet", values: tlsValues(ca, future, nil), secret: secretKey,
			wantErr: []string{"config tlsCertificate: is not valid until", "this machine's clock"}},
		{name: "another name", values: with(map[string]string{config.KeySiteHost: "www.example.com"}), secret: secretKey,
			wantErr: []string{`config tlsCertificate: does not cover siteHost "www.example.com" (it covers localhost)`, "pulumi config set siteHost"}},
		{name: "a CA nobody trusts", values: with(map[string]string{config.KeyTLSTrustedCA: other.PEM}), secret: secretKey,
			wantErr: []string{"config tlsCertificate: a client cannot verify it", "pulumi config set tlsTrustedCA < ca.pem"}},
		{name: "the key in the chain", values: with(map[string]string{config.KeyTLSCertificate: leaf.CertPEM + leaf.KeyPEM}), secret: secretKey,
			wantErr: []string{"config tlsCertificate: holds a PRIVATE KEY block", "the key goes in tlsKey"}},
		{name: "not PEM", values: with(map[string]string{config.KeyTLSCertificate: "cert.pem"}), secret: secretKey,
			wantErr: []string{"config tlsCertificate: is not a PEM certificate chain", "pulumi config set tlsCertificate < fullchain.pem"}},
		{name: "a certificate without its key", values: with(map[string]string{config.KeyTLSKey: ""}),
			wantErr: []string{"config tlsKey: is empty, but tlsCertificate is set", "pulumi config set --secret tlsKey < key.pem"}},
		{name: "a key without its certificate", values: with(map[string]string{config.KeyTLSCertificate: ""}), secret: secretKey,
			wantErr: []string{"config tlsCertificate: is empty, but tlsKey is set", "pulumi config set tlsCertificate < fullchain.pem"}},
		{name: "the HTTP port", values: with(map[string]string{config.KeyHTTPSPort: "8080"}), secret: secretKey,
			wantErr: []string{"config httpsPort: 8080 is hostPort too", "pulumi config set httpsPort 8443"}},
		{name: "no trusted CA in tlsTrustedCA", values: with(map[string]string{config.KeyTLSTrustedCA: "ca.pem"}), secret: secretKey,
			wantErr: []string{"config tlsTrustedCA: holds no PEM certificate", "pulumi config set tlsTrustedCA < ca.pem"}},
		{name: "each problem on its line", values: tlsValues(ca, expired, map[string]string{config.KeySiteHost: "www.example.com"}), secret: secretKey,
			wantErr: []string{"expired on", "\n", "does not cover siteHost"}},
	})
}

func TestTLSProblemsNeverShowTheKey(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.IssueNow(t, "localhost")
	other := testpki.OtherKey(t)
	_, err := load(t, tlsValues(ca, leaf, map[string]string{config.KeyTLSKey: other, config.KeyTLSCertificate: leaf.CertPEM + other}), nil, "")
	if err == nil {
		t.Fatal("want refusals")
	}
	body := strings.Split(strings.TrimSpace(other), "\n")[1]
	if strings.Contains(err.Error(), body) {
		t.Fatalf("the error shows the key: %v", err)
	}
}
