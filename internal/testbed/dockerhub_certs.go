package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"math/big"
	"strings"
	"time"
)

// HubCA is the private certificate authority of the tests' own Docker Hub: made in memory
// by the test, trusted only inside the Hub's namespaces (never by the host).
type HubCA struct {
	Cert *x509.Certificate
	PEM  []byte // the CA certificate, PEM-encoded: what the namespaces' bundle adds

	key *ecdsa.PrivateKey
}

// hubCertLifetime is how long the Hub's certificates are valid: a test run, with room.
const hubCertLifetime = 24 * time.Hour

// NewHubCA makes a fresh CA with a P-256 key.
func NewHubCA() (*HubCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := certTemplate("custom-nginx test Docker Hub CA")
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &HubCA{Cert: cert, PEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// Pool is a certificate pool holding only the CA.
func (ca *HubCA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// ServerCert issues a TLS server certificate for names, with a key of its own; certPEM and
// keyPEM are the same, PEM-encoded, for a server that reads files (the registry).
func (ca *HubCA) ServerCert(names ...string) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	tmpl, err := certTemplate(names[0])
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	tmpl.DNSNames = names
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	certPEM, keyPEM = pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER)
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, keyPEM, err
}

// signerCertPEM is a self-signed certificate of the token signing key: distribution reads
// the keys it trusts for tokens from certificates (auth.token.rootcertbundle).
func signerCertPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	tmpl, err := certTemplate(HubAuthHost + " token signer")
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pemBlock("CERTIFICATE", der), nil
}

func certTemplate(commonName string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"custom-nginx tests"}},
		NotBefore:    now.Add(-time.Hour), // clocks of the processes involved may differ a little
		NotAfter:     now.Add(hubCertLifetime),
	}, nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// LibtrustKeyID is the key ID docker/libtrust gives a public key, which distribution 2.8
// matches against a token's `kid`: the SHA-256 of the DER SubjectPublicKeyInfo, its first
// 30 bytes in base32 without padding, in 12 groups of 4 joined by ':'.
func LibtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	encoded := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	groups := make([]string, 0, len(encoded)/4)
	for i := 0; i < len(encoded); i += 4 {
		groups = append(groups, encoded[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}
