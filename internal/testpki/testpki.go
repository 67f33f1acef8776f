// Package testpki issues the tests' own certificates: a CA only the tests trust, and
// server certificates it signs for the names and the validity a test asks for.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// CA is a certificate authority that only the tests trust.
type CA struct {
	Cert *x509.Certificate
	PEM  string // the CA's certificate: for tlsTrustedCA, a client's roots or a CA bundle
	key  *ecdsa.PrivateKey
}

// Leaf is a server certificate the CA issued, and its key, both PEM.
type Leaf struct {
	CertPEM string
	KeyPEM  string
}

// New makes a CA named name, valid from an hour ago (clocks of the processes involved may
// differ a little) for a year.
func New(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, PEM: encode("CERTIFICATE", der), key: key}, nil
}

// NewCA is New, failing t on error.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Sign issues a server certificate for hosts (DNS names or IP addresses), valid from
// notBefore to notAfter, with a P-256 key of its own.
func (ca *CA) Sign(hosts []string, notBefore, notAfter time.Time) (Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, err
	}
	tmpl, err := template(hosts[0], notBefore, notAfter)
	if err != nil {
		return Leaf{}, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Leaf{}, err
	}
	keyPEM, err := encodeKey(key)
	return Leaf{CertPEM: encode("CERTIFICATE", der), KeyPEM: keyPEM}, err
}

// Issue is Sign, failing t on error.
func (ca *CA) Issue(t testing.TB, hosts []string, notBefore, notAfter time.Time) Leaf {
	t.Helper()
	leaf, err := ca.Sign(hosts, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// IssueNow is Issue valid from an hour ago for 90 days, as an ACME certificate is.
func (ca *CA) IssueNow(t testing.TB, hosts ...string) Leaf {
	t.Helper()
	return ca.Issue(t, hosts, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
}

// TLSCertificate is the leaf as a Go server serves it.
func (l Leaf) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair([]byte(l.CertPEM), []byte(l.KeyPEM))
}

// OtherKey is a PEM private key that goes with no certificate.
func OtherKey(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return keyPEM
}

func template(commonName string, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"custom-nginx tests"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}, nil
}

func encodeKey(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return encode("PRIVATE KEY", der), nil
}

func encode(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}
