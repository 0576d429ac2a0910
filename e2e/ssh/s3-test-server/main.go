// s3-test-server is the SSH-host rung's S3-compatible storage, where the droplet's backups go in
// place of DigitalOcean Spaces: gofakes3 (a served module) with its in-memory backend, over HTTPS on
// a Unix socket the harness relays to the rehearsal's internet. It answers only requests signed with
// the one access key id it is given (it checks the key id, not the signature: gofakes3 verifies no
// signatures), and logs every request as `METHOD PATH STATUS` for the test.
//
//	s3-test-server -listen SOCKET -cert FILE -key FILE -access-key-id ID -bucket NAME
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// The key id in an AWS Signature Version 4 Authorization header.
var credential = regexp.MustCompile(`Credential=([^/,\s]+)/`)

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func main() {
	listen := flag.String("listen", "", "Unix socket to listen on")
	cert := flag.String("cert", "", "TLS certificate (PEM, chain)")
	key := flag.String("key", "", "TLS private key (PEM)")
	accessKeyID := flag.String("access-key-id", "", "the only access key id accepted")
	bucket := flag.String("bucket", "", "bucket to create")
	flag.Parse()
	if *listen == "" || *cert == "" || *key == "" || *accessKeyID == "" || *bucket == "" {
		log.Fatal("usage: s3-test-server -listen SOCKET -cert FILE -key FILE -access-key-id ID -bucket NAME")
	}
	backend := s3mem.New()
	if err := backend.CreateBucket(*bucket); err != nil {
		log.Fatal(err)
	}
	s3 := gofakes3.New(backend, gofakes3.WithoutVersioning()).Server()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recorded := &recorder{ResponseWriter: w, status: http.StatusOK}
		match := credential.FindStringSubmatch(r.Header.Get("Authorization"))
		if match == nil || match[1] != *accessKeyID {
			recorded.Header().Set("Content-Type", "application/xml")
			recorded.WriteHeader(http.StatusForbidden)
			_, _ = recorded.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`))
		} else {
			s3.ServeHTTP(recorded, r)
		}
		log.Printf("%s %s %d", r.Method, r.URL.RequestURI(), recorded.status)
	})
	_ = os.Remove(*listen)
	listener, err := net.Listen("unix", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.SetOutput(os.Stdout)
	log.Fatal(http.ServeTLS(listener, handler, *cert, *key))
}
