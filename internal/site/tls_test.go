package site_test

import (
	"encoding/base64"
	"fmt"
	"path"
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
	volume := site.TLSName(namePrefix, engine.TLSFiles(cfg.TLS.Certificate, leaf.KeyPEM, "https://localhost:8443"))
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

// TestSwarmServesHTTPSFromSecrets: in swarm mode each file is a Swarm secret, a secret in
// the state too, that every task gets in engine.TLSDir as nginx's; the service publishes
// httpsPort; there is no volume, and the preflight proves the files in one of its own.
func TestSwarmServesHTTPSFromSecrets(t *testing.T) {
	ca := testpki.NewCA(t, "swarm test CA")
	leaf := ca.IssueNow(t, "manager.example.com")
	cfg := pulumimock.NewStackConfig(t, projectRoot, pulumimock.With(pushValues, pulumimock.With(swarmValues, map[string]string{
		config.KeyTLSCertificate: leaf.CertPEM, config.KeyTLSKey: leaf.KeyPEM, config.KeyTLSTrustedCA: ca.PEM})),
		config.KeyRegistryPassword, config.KeyTLSKey).Load(t, "")
	d := deploy(t, cfg)
	files := engine.TLSFiles(cfg.TLS.Certificate, leaf.KeyPEM, "https://manager.example.com:8443")
	service := d.rec.One(t, pulumimock.TypeService).Inputs
	for i, f := range files {
		secret := d.rec.Named(t, "site-tls-"+strings.TrimSuffix(f.Name, path.Ext(f.Name))).Inputs
		if got, want := pulumimock.Plain(t, secret, "name"), site.TLSName(namePrefix, files)+"-"+f.Name; got != want {
			t.Errorf("secret %s, want %s", got, want)
		}
		data := pulumimock.At(t, secret, "data")
		if decoded, err := base64.StdEncoding.DecodeString(pulumimock.Plain(t, secret, "data")); !data.IsSecret() || err != nil || string(decoded) != f.Content {
			t.Errorf("secret %s: data is secret %v, decodes to %q (%v), want %q", f.Name, data.IsSecret(), decoded, err, f.Content)
		}
		at := fmt.Sprintf("taskSpec.containerSpec.secrets[%d].", i)
		for key, want := range map[string]string{"fileName": engine.TLSDir + "/" + f.Name, "fileUid": "101", "fileGid": "101", "fileMode": fmt.Sprint(f.Mode)} {
			if got := pulumimock.Plain(t, service, at+key); got != want {
				t.Errorf("service %s%s = %s, want %s", at, key, got, want)
			}
		}
	}
	expectAt(t, service, "endpointSpec.ports[1].targetPort", float64(engine.HTTPSPort))
	expectAt(t, service, "endpointSpec.ports[1].publishedPort", 8443.0)
	if volumes := d.rec.ByType(pulumimock.TypeVolume); len(volumes) != 0 {
		t.Errorf("swarm mode registered %d volumes", len(volumes))
	}
	argv := pulumimock.StringList(d.rec.Named(t, "site-preflight").Inputs, "interpreter")
	if !slices.Contains(argv, "-tls-volume=") || !slices.ContainsFunc(argv, func(a string) bool { return strings.HasPrefix(a, "-tls-certificate=") }) {
		t.Errorf("the swarm preflight %q: want the certificate in a volume of its own", argv)
	}
	if got := d.outputs["url"]; got != "https://manager.example.com:8443/" {
		t.Errorf("url %s", got)
	}
	// A new certificate is a rolling update of the same service: the checks run again.
	for _, name := range []string{"site-rollout", "site-smoke-check"} {
		triggers := d.rec.Named(t, name).Inputs["triggers"].ArrayValue()
		if last := triggers[len(triggers)-1]; len(triggers) != 3 || last.StringValue() != engine.TLSSHA256(files) {
			t.Errorf("%s triggers %v: want the service, the image and the certificate's files", name, triggers)
		}
	}
}
