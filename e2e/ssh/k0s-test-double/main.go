// k0s-test-double stands in for k0s on the SSH-host rung, where no k0s can run (the Go module proxy
// refuses k0s, and nothing else may be built). It is not k0s and decides nothing k0s decides: it
// answers the few commands the program's SSH steps run, from a real kube-apiserver the test harness
// started, and records every call so the test can say what the steps asked of k0s.
//
//	version                       prints the version it was built to report (-X main.version)
//	install controller [-c FILE]  writes and enables a k0scontroller systemd unit, as k0s does
//	controller [...]              what the unit runs: writes the admin kubeconfig where k0s keeps
//	                              it, and relays :6443 to the harness's API server
//	kubectl get --raw=PATH        GETs PATH from the API server with the admin kubeconfig
//	kubeconfig admin              prints the admin kubeconfig (only once the controller has run)
//	status                        prints a k0s-like status while the controller runs
//	backup --save-path DIR        writes DIR/k0s_backup_<UTC time>.tar.gz, as k0s names its
//	                              archives, holding the k0s config (k0s's holds its data and PKI)
//
// Anything else fails, naming itself, so a step that asks for more than this shows up at once.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var version = "unset"

const (
	// Written by the harness into the droplet: the admin kubeconfig of its API server (server
	// https://localhost:6443, which the controller relays) and that server's address as the droplet
	// reaches it. They stand in for the PKI and the API server k0s would create.
	seedDir       = "/var/lib/k0s-test-double"
	callLog       = "/var/log/k0s-test-double/calls.log"
	adminConf     = "/var/lib/k0s/pki/admin.conf"
	unitPath      = "/etc/systemd/system/k0scontroller.service"
	binaryPath    = "/usr/local/bin/k0s"
	defaultConfig = "/etc/k0s/k0s.yaml"
	apiAddress    = ":6443"
)

func main() {
	record(os.Args)
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "k0s-test-double: %v\n", err)
		os.Exit(1)
	}
}

// record appends argv to the call log, on a rehearsal host only (one the harness seeded), so that
// running the double elsewhere (the harness asks it its version) leaves nothing behind.
func record(argv []string) {
	if _, err := os.Stat(seedDir); err != nil {
		return
	}
	_ = os.MkdirAll("/var/log/k0s-test-double", 0o755)
	f, err := os.OpenFile(callLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	line, _ := json.Marshal(argv)
	fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), line)
}

func run(args []string) error {
	command := strings.Join(firstWords(args, 2), " ")
	switch {
	case command == "version" || (len(args) == 1 && args[0] == "version"):
		fmt.Println(version)
		return nil
	case command == "install controller":
		return installController(args[2:])
	case len(args) > 0 && args[0] == "controller":
		return controller()
	case command == "kubectl get" && len(args) == 3 && strings.HasPrefix(args[2], "--raw="):
		body, err := get(strings.TrimPrefix(args[2], "--raw="))
		if err != nil {
			return err
		}
		fmt.Print(body)
		return nil
	case command == "kubeconfig admin":
		text, err := os.ReadFile(adminConf)
		if err != nil {
			return fmt.Errorf("no admin kubeconfig yet (the controller has not run): %w", err)
		}
		os.Stdout.Write(text)
		return nil
	case len(args) == 3 && args[0] == "backup" && args[1] == "--save-path":
		return backup(args[2])
	case command == "status":
		if _, err := get("/readyz"); err != nil {
			return fmt.Errorf("the controller is not running: %w", err)
		}
		fmt.Printf("Version: %s\nRole: controller\nWorkloads: true\nSingleNode: true\nTest double: yes\n", version)
		return nil
	}
	return fmt.Errorf("unsupported command %q (this is a test double, not k0s)", strings.Join(args, " "))
}

// backup writes an archive where `k0s backup` writes its own, named as k0s names it, so the
// program's backup script finds, uploads and removes it as it would k0s's.
func backup(dir string) error {
	if _, err := get("/readyz"); err != nil {
		return fmt.Errorf("cannot back up: the controller is not running: %w", err)
	}
	name := filepath.Join(dir, fmt.Sprintf("k0s_backup_%s.tar.gz", time.Now().UTC().Format("2006-01-02T15_04_05Z")))
	config, err := os.ReadFile(defaultConfig)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	compressed := gzip.NewWriter(f)
	archive := tar.NewWriter(compressed)
	if err := archive.WriteHeader(&tar.Header{Name: "k0s.yaml", Mode: 0o600, Size: int64(len(config)), ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := archive.Write(config); err != nil {
		return err
	}
	if err := archive.Close(); err != nil {
		return err
	}
	if err := compressed.Close(); err != nil {
		return err
	}
	fmt.Printf("backup written to %s\n", name)
	return nil
}

func firstWords(args []string, n int) []string {
	if len(args) < n {
		return args
	}
	return args[:n]
}

// installController writes a unit like the one `k0s install controller --single` writes and enables
// it, so systemd (not the double) starts it at every boot. It refuses to overwrite one, as k0s does.
func installController(args []string) error {
	config := defaultConfig
	single := false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--single":
			single = true
		case (args[i] == "-c" || args[i] == "--config") && i+1 < len(args):
			config = args[i+1]
			i++
		case strings.HasPrefix(args[i], "--config="):
			config = strings.TrimPrefix(args[i], "--config=")
		default:
			return fmt.Errorf("install controller: unsupported flag %q", args[i])
		}
	}
	if _, err := os.Stat(unitPath); err == nil {
		return errors.New("install controller: k0scontroller.service is already installed")
	}
	if _, err := os.Stat(config); err != nil {
		return fmt.Errorf("install controller: %w", err)
	}
	unit := strings.Join([]string{
		"[Unit]",
		"Description=k0s controller (k0s-test-double: a test double, not k0s)",
		"After=network-online.target",
		"Wants=network-online.target",
		"ConditionFileIsExecutable=" + binaryPath,
		"",
		"[Service]",
		fmt.Sprintf("ExecStart=%s controller --config=%s --single=%t", binaryPath, config, single),
		"Restart=always",
		"RestartSec=2",
		"",
		"[Install]",
		"WantedBy=multi-user.target",
		"",
	}, "\n")
	if err := os.WriteFile(unitPath, []byte(unit), 0o644); err != nil {
		return err
	}
	for _, argv := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "k0scontroller.service"}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	return nil
}

// controller publishes the admin kubeconfig and relays the API port to the harness's API server
// until systemd stops it.
func controller() error {
	seed, err := os.ReadFile(seedDir + "/admin.conf")
	if err != nil {
		return err
	}
	upstream, err := os.ReadFile(seedDir + "/upstream")
	if err != nil {
		return err
	}
	if err := os.MkdirAll("/var/lib/k0s/pki", 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(adminConf, seed, 0o600); err != nil {
		return err
	}
	listener, err := net.Listen("tcp", apiAddress)
	if err != nil {
		return err
	}
	target := strings.TrimSpace(string(upstream))
	fmt.Printf("relaying %s to the harness's API server at %s\n", apiAddress, target)
	for {
		client, err := listener.Accept()
		if err != nil {
			return err
		}
		go relay(client, target)
	}
}

func relay(client net.Conn, target string) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, client); done <- struct{}{} }()
	go func() { io.Copy(client, server); done <- struct{}{} }()
	<-done
}

// get fetches path from the server the admin kubeconfig names, with its credentials.
func get(path string) (string, error) {
	conf, err := os.ReadFile(adminConf)
	if err != nil {
		return "", fmt.Errorf("no admin kubeconfig: %w", err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(conf), "\n") {
		key, value, found := strings.Cut(strings.TrimSpace(line), ": ")
		if found {
			fields[key] = value
		}
	}
	decode := func(key string) []byte {
		data, _ := base64.StdEncoding.DecodeString(fields[key])
		return data
	}
	pair, err := tls.X509KeyPair(decode("client-certificate-data"), decode("client-key-data"))
	if err != nil {
		return "", err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(decode("certificate-authority-data"))
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}},
	}
	response, err := client.Get(fields["server"] + path)
	if err != nil {
		return "", err
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	if response.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", path, response.Status, body)
	}
	return string(body), nil
}
