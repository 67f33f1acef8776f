package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"math/big"
	"strings"
	"time"

	"github.com/example/custom-nginx/internal/testpki"
)

// hubCertLifetime is how long the Hub's certificates are valid: a test run, with room.
const hubCertLifetime = 24 * time.Hour

// hubServerCert issues a server certificate of the Hub's CA for names, valid for a test run.
func hubServerCert(ca *testpki.CA, names ...string) (testpki.Leaf, error) {
	return ca.Sign(names, time.Now().Add(-time.Hour), time.Now().Add(hubCertLifetime))
}

// signerCertPEM is a self-signed certificate of the token signing key: distribution reads
// the keys it trusts for tokens from certificates (auth.token.rootcertbundle).
func signerCertPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	tmpl, err := signerTemplate(HubAuthHost + " token signer")
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

func signerTemplate(commonName string) (*x509.Certificate, error) {
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
