package site_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/example/custom-nginx/internal/config"
	"github.com/example/custom-nginx/internal/engine"
	"github.com/example/custom-nginx/internal/pulumimock"
	"github.com/example/custom-nginx/internal/site"
	"github.com/example/custom-nginx/internal/subcommand"
	"github.com/example/custom-nginx/internal/testpki"
)

// httpsConfig is a plain (push=false) stack that serves HTTPS with a certificate for
// localhost from a CA of the test's own.
func httpsConfig(t *testing.T) (config.Config, testpki.Leaf, *testpki.CA) {
	t.Helper()
	ca := testpki.NewCA(t, "site test CA")
	leaf := ca.IssueNow(t, "localhost")
	cfg := pulumimock.NewStackConfig(t, projectRoot, map[string]string{config.KeyPush: "false",
		config.KeyTLSCertificate: leaf.CertPEM, config.KeyTLSKey: leaf.KeyPEM, config.KeyTLSTrustedCA: ca.PEM},
		config.KeyTLSKey).Load(t, "")
	return cfg, leaf, ca
}

// TestHTTPSFilesReachNginxAtRunTime: the holder publishes httpsPort too; the preflight fills
// a volume named after the files, which nginx mounts read-only.
func TestHTTPSFilesReachNginxAtRunTime(t *testing.T) {
	cfg, leaf, _ := httpsConfig(t)
	d := deploy(t, cfg)
	ports := d.rec.Named(t, "site-port-holder").Inputs["ports"].ArrayValue()
	if got := fmt.Sprint(ports); len(ports) != 2 || !strings.Contains(got, "8443") {
		t.Errorf("port holder ports %s, want 8080 and 8443", got)
	}
	volume := site.TLSVolumeName(namePrefix, engine.TLSFiles(cfg.TLS.Certificate, leaf.KeyPEM, "https://localhost:8443"))
	if got := pulumimock.Plain(t, d.rec.Named(t, "site-tls").Inputs, "name"); got != volume {
		t.Errorf("TLS volume %q, want %q", got, volume)
	}
	nginx := d.rec.Named(t, "site-nginx")
	for path, want := range map[string]string{"volumes[0].volumeName": volume, "volumes[0].containerPath": engine.TLSDir, "volumes[0].readOnly": "true"} {
		if got := pulumimock.Plain(t, nginx.Inputs, path); got != want {
			t.Errorf("nginx %s = %q, want %q", path, got, want)
		}
	}
	preflight := d.rec.Named(t, "site-preflight")
	if !slices.Contains(pulumimock.StringList(preflight.Inputs, "interpreter"), "-tls-volume="+volume) || !pulumimock.DependsOn(preflight.Deps, "site-tls") {
		t.Errorf("the preflight does not fill %s after it is created: %v, deps %v", volume, pulumimock.StringList(preflight.Inputs, "interpreter"), preflight.Deps)
	}
	if !pulumimock.DependsOn(nginx.Deps, "site-preflight") {
		t.Errorf("nginx does not wait for the preflight that fills its volume: deps %v", nginx.Deps)
	}
}

// TestHTTPSChecks: the preflight serves the certificate (its key a secret in its
// environment) and runs again for a new one; the smoke check and the url are https.
func TestHTTPSChecks(t *testing.T) {
	cfg, leaf, ca := httpsConfig(t)
	d := deploy(t, cfg)
	preflight := d.rec.Named(t, "site-preflight")
	argv := pulumimock.StringList(preflight.Inputs, "interpreter")
	check, err := subcommand.ParsePreflight(append(argv[2:], "sha256:image"))
	if err == nil || !strings.Contains(err.Error(), subcommand.TLSKeyEnv) {
		t.Errorf("the preflight's arguments parse without the key in its environment (%v): the key is on the command line", err)
	}
	if strings.Contains(strings.Join(argv, " "), strings.Split(leaf.KeyPEM, "\n")[1]) {
		t.Error("the key is on the preflight's command line")
	}
	t.Setenv(subcommand.TLSKeyEnv, leaf.KeyPEM)
	if check, err = subcommand.ParsePreflight(append(argv[2:], "sha256:image")); err != nil {
		t.Fatal(err)
	}
	if check.TLSCertificate != cfg.TLS.Certificate || check.HTTPSOrigin != "https://localhost:8443" || check.TrustedCA != cfg.TLS.TrustedCA {
		t.Errorf("preflight %+v: want the certificate, the origin and the trusted CA", check)
	}
	if key := pulumimock.At(t, preflight.Inputs, "environment."+subcommand.TLSKeyEnv); !key.IsSecret() || key.SecretValue().Element.StringValue() != leaf.KeyPEM {
		t.Errorf("the preflight's %s is not the key as a secret", subcommand.TLSKeyEnv)
	}
	if triggers := preflight.Inputs["triggers"].ArrayValue(); len(triggers) != 2 {
		t.Errorf("preflight triggers %v: want the image and the certificate's files", triggers)
	}
	smoke := smokeCheckOf(t, d.rec.Named(t, "site-smoke-check"))
	if smoke.URL != "https://localhost:8443/" || smoke.TrustedCA != strings.TrimSpace(ca.PEM) {
		t.Errorf("smoke check %s trusting %q, want https://localhost:8443/ and the test CA", smoke.URL, smoke.TrustedCA)
	}
	if got := d.outputs["url"]; got != "https://localhost:8443/" {
		t.Errorf("url %s, want the https one", got)
	}
}

// TestTheKeyReachesOnlyThePreflight, as a secret, which puts it in the TLS volume.
func TestTheKeyReachesOnlyThePreflight(t *testing.T) {
	cfg, leaf, _ := httpsConfig(t)
	d := deploy(t, cfg)
	keyLine := strings.Split(leaf.KeyPEM, "\n")[1]
	for _, res := range d.rec.All() {
		switch res.Name {
		case "site-preflight":
			delete(res.Inputs, "environment") // TestHTTPSChecks
		}
		if strings.Contains(jsonString(res.Inputs.Mappable()), keyLine) {
			t.Errorf("%s %s receives the key", res.Type, res.Name)
		}
	}
}

// TestANewCertificateIsANewNginx: its name changes with the files, so it starts beside
// the old one.
func TestANewCertificateIsANewNginx(t *testing.T) {
	files := engine.TLSFiles("cert", "key", "https://localhost:8443")
	rotated := engine.TLSFiles("cert2", "key2", "https://localhost:8443")
	plain := site.NginxName("p", "img", "holder", nil)
	if a, b := site.NginxName("p", "img", "holder", files), site.NginxName("p", "img", "holder", rotated); a == b || a == plain {
		t.Errorf("names %s, %s, plain %s: want three different", a, b, plain)
	}
}
