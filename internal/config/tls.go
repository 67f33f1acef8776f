package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// TLS is the certificate the site serves HTTPS with; its zero value serves plain HTTP.
type TLS struct {
	Certificate string // PEM chain, leaf first
	Key         Secret // PEM private key of the leaf
	// TrustedCA is PEM of the CAs the checks trust beside the system's: a private CA's, or
	// a test's. "" trusts the system's alone, as browsers do.
	TrustedCA string
}

// Enabled reports whether the site serves HTTPS.
func (t TLS) Enabled() bool { return t.Certificate != "" }

// renewWithin is how close to its expiry a certificate draws a warning.
const renewWithin = 14 * 24 * time.Hour

// tls reads the certificate, its key, the CA the checks trust and the HTTPS port, and
// checks the pair as a client will: the key matches, the chain parses and is valid now,
// it covers siteHost and a client that trusts the system's roots (or tlsTrustedCA)
// verifies it. A certificate close to its expiry is a warning, not a problem.
func (r *reader) tls(cfg *Config) {
	cfg.HTTPSPort = r.integer(KeyHTTPSPort, 1, 65535, "%q is not a port number from 1 to 65535; fix: pulumi config set httpsPort 8443")
	certPEM := strings.TrimSpace(r.get(KeyTLSCertificate))
	keyPEM, keySet := r.src.Get(KeyTLSKey)
	if keySet && keyPEM != "" && !r.src.IsSecret(KeyTLSKey) {
		r.refuse(KeyTLSKey, "is stored in plain text in the stack file; fix: pulumi config rm tlsKey && pulumi config set --secret tlsKey < key.pem")
	}
	trusted := r.trustedCA()
	switch {
	case certPEM == "" && keyPEM == "":
		return
	case certPEM == "":
		r.refuse(KeyTLSCertificate, "is empty, but tlsKey is set; fix: pulumi config set tlsCertificate < fullchain.pem (or pulumi config rm tlsKey for plain HTTP)")
		return
	case keyPEM == "":
		r.refuse(KeyTLSKey, "is empty, but tlsCertificate is set; fix: pulumi config set --secret tlsKey < key.pem (or pulumi config rm tlsCertificate for plain HTTP)")
		return
	}
	if cfg.HTTPSPort == cfg.HostPort {
		r.refuse(KeyHTTPSPort, "%d is hostPort too, which redirects to it; fix: pulumi config set httpsPort 8443", cfg.HTTPSPort)
	}
	cfg.TLS = TLS{Certificate: certPEM + "\n", Key: Secret(keyPEM), TrustedCA: trusted}
	chain, ok := r.chain(certPEM)
	if !ok {
		return
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		r.refuse(KeyTLSKey, "does not go with tlsCertificate (%v); fix: pulumi config set --secret tlsKey < the key the certificate was issued for", keyProblem(err))
	}
	r.validNow(chain[0], cfg)
	r.covers(chain[0], cfg.SiteHost)
	r.verifies(chain, trusted)
}

// chain parses the PEM chain: certificates only, at least one.
func (r *reader) chain(certPEM string) ([]*x509.Certificate, bool) {
	var chain []*x509.Certificate
	rest := []byte(certPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			r.refuse(KeyTLSCertificate, "holds a %s block; fix: pulumi config set tlsCertificate < fullchain.pem (certificates only, leaf first; the key goes in tlsKey)", block.Type)
			return nil, false
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			r.refuse(KeyTLSCertificate, "certificate %d of the chain does not parse: %v; fix: pulumi config set tlsCertificate < fullchain.pem", len(chain)+1, err)
			return nil, false
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 || strings.TrimSpace(string(rest)) != "" {
		r.refuse(KeyTLSCertificate, "is not a PEM certificate chain; fix: pulumi config set tlsCertificate < fullchain.pem (-----BEGIN CERTIFICATE----- blocks, leaf first)")
		return nil, false
	}
	return chain, true
}

// keyProblem says why tls.X509KeyPair refused the pair, without the key itself.
func keyProblem(err error) string {
	if strings.Contains(err.Error(), "does not match") {
		return "the private key does not match the leaf certificate's public key"
	}
	return err.Error()
}

// validNow refuses a leaf that is not valid yet or any more, and warns about one that
// expires within renewWithin.
func (r *reader) validNow(leaf *x509.Certificate, cfg *Config) {
	now := time.Now()
	const fix = "fix: renew it and pulumi config set tlsCertificate < fullchain.pem"
	switch left := leaf.NotAfter.Sub(now); {
	case now.Before(leaf.NotBefore):
		r.refuse(KeyTLSCertificate, "is not valid until %s; %s (or check this machine's clock)", leaf.NotBefore.UTC().Format(time.RFC3339), fix)
	case left <= 0:
		r.refuse(KeyTLSCertificate, "expired on %s; %s", leaf.NotAfter.UTC().Format(time.RFC3339), fix)
	case left < renewWithin:
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("config %s: expires in %.1f days, on %s; renew it soon and pulumi config set tlsCertificate < fullchain.pem",
			KeyTLSCertificate, left.Hours()/24, leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
}

// covers refuses a leaf that does not name siteHost, the host people open.
func (r *reader) covers(leaf *x509.Certificate, siteHost string) {
	if err := leaf.VerifyHostname(siteHost); err != nil {
		names := append([]string{}, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		r.refuse(KeyTLSCertificate, "does not cover siteHost %q (it covers %s); fix: pulumi config set siteHost <one of those>, or a certificate issued for %s",
			siteHost, orNone(names), siteHost)
	}
}

// verifies refuses a chain a client trusting the system's roots and trusted cannot
// verify: a missing intermediate, or a private CA without tlsTrustedCA.
func (r *reader) verifies(chain []*x509.Certificate, trusted string) {
	roots, _ := TrustedRoots(trusted) // without the system's, trusted alone
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	var hostErr x509.HostnameError
	var expired x509.CertificateInvalidError
	if _, err := chain[0].Verify(opts); err != nil && !errors.As(err, &hostErr) &&
		!(errors.As(err, &expired) && expired.Reason == x509.Expired) { // covers and validNow said those
		r.refuse(KeyTLSCertificate, "a client cannot verify it: %v; fix: put the intermediates in tlsCertificate after the leaf, or, for a private CA, pulumi config set tlsTrustedCA < ca.pem",
			err)
	}
}

// TrustedRoots are the system's root CAs and those in trustedPEM: what a check trusts. When
// the system's cannot be read, they are trustedPEM's alone, with the error.
func TrustedRoots(trustedPEM string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots, err = x509.NewCertPool(), fmt.Errorf("reading the system's root CAs: %w", err)
	}
	if trustedPEM != "" {
		roots.AppendCertsFromPEM([]byte(trustedPEM))
	}
	return roots, err
}

// trustedCA reads tlsTrustedCA: PEM certificates, or empty.
func (r *reader) trustedCA() string {
	trusted := strings.TrimSpace(r.get(KeyTLSTrustedCA))
	if trusted != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(trusted)) {
		r.refuse(KeyTLSTrustedCA, "holds no PEM certificate; fix: pulumi config set tlsTrustedCA < ca.pem (or pulumi config rm tlsTrustedCA for the system's roots)")
	}
	return trusted
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "no host name"
	}
	return strings.Join(names, ", ")
}

// URL is where people open the site and the smoke check fetches it: over HTTPS on
// httpsPort when TLS is set (the port left out when it is 443), else over HTTP on hostPort.
func (c Config) URL() string {
	if !c.TLS.Enabled() {
		return "http://" + net.JoinHostPort(c.SiteHost, strconv.Itoa(c.HostPort)) + "/"
	}
	return "https://" + strings.TrimSuffix(net.JoinHostPort(c.SiteHost, strconv.Itoa(c.HTTPSPort)), ":443") + "/"
}
