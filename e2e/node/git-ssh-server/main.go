// git-ssh-server is the SSH side of a Git host for the node rung, as GitHub's or GitLab's deploy
// keys work: a client that offers a key listed in the authorized-keys file may run
// `git-upload-pack '<repository>'` (clone and fetch, nothing else) on a repository under the root;
// any other key, command or path is refused. The file is read on every connection, so the test
// adds a deploy key as an operator pastes one into the Git host. It listens on a Unix socket, which
// the harness publishes on the node's LAN.
//
//	git-ssh-server -listen SOCKET -host-key FILE -authorized-keys FILE -root DIR
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

func main() {
	listen := flag.String("listen", "", "Unix socket to listen on")
	hostKeyFile := flag.String("host-key", "", "the server's private host key (OpenSSH format)")
	authorizedKeys := flag.String("authorized-keys", "", "authorized_keys file of the deploy keys")
	root := flag.String("root", "", "directory of bare repositories")
	flag.Parse()
	if *listen == "" || *hostKeyFile == "" || *authorizedKeys == "" || *root == "" {
		log.Fatal("usage: git-ssh-server -listen SOCKET -host-key FILE -authorized-keys FILE -root DIR")
	}
	pem, err := os.ReadFile(*hostKeyFile)
	if err != nil {
		log.Fatal(err)
	}
	hostKey, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		log.Fatal(err)
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if authorized(*authorizedKeys, key) {
				log.Printf("accepted %s key %s for %s", key.Type(), ssh.FingerprintSHA256(key), meta.User())
				return &ssh.Permissions{}, nil
			}
			log.Printf("refused %s key %s for %s", key.Type(), ssh.FingerprintSHA256(key), meta.User())
			return nil, errors.New("not a deploy key of this repository")
		},
	}
	config.AddHostKey(hostKey)
	_ = os.Remove(*listen)
	listener, err := net.Listen("unix", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn, config, *root)
	}
}

// authorized reports whether key is one of the file's keys (options and comments aside).
func authorized(file string, key ssh.PublicKey) bool {
	rest, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for len(rest) > 0 {
		listed, _, _, next, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return false
		}
		if bytes.Equal(listed.Marshal(), key.Marshal()) {
			return true
		}
		rest = next
	}
	return false
}

func serve(conn net.Conn, config *ssh.ServerConfig, root string) {
	defer conn.Close()
	_, channels, requests, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(requests)
	for newChannel := range channels {
		if newChannel.ChannelType() != "session" {
			_ = newChannel.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		channel, channelRequests, err := newChannel.Accept()
		if err != nil {
			continue
		}
		go session(channel, channelRequests, root)
	}
}

// session runs the one command a deploy key may: git-upload-pack on a repository under root.
func session(channel ssh.Channel, requests <-chan *ssh.Request, root string) {
	defer channel.Close()
	for request := range requests {
		if request.Type != "exec" {
			// env (GIT_PROTOCOL), pty-req, shell...: nothing a fetch needs.
			_ = request.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(request.Payload, &payload); err != nil {
			_ = request.Reply(false, nil)
			return
		}
		repository, err := uploadPackPath(payload.Command, root)
		if err != nil {
			_ = request.Reply(true, nil)
			fmt.Fprintf(channel.Stderr(), "git-ssh-server: %v\n", err)
			exit(channel, 128)
			return
		}
		_ = request.Reply(true, nil)
		command := exec.Command("git-upload-pack", repository)
		command.Stdin, command.Stdout, command.Stderr = channel, channel, channel.Stderr()
		status := 0
		if err := command.Run(); err != nil {
			status = 1
			var exitError *exec.ExitError
			if errors.As(err, &exitError) {
				status = exitError.ExitCode()
			}
		}
		exit(channel, status)
		return
	}
}

// uploadPackPath accepts `git-upload-pack '<path>'` (or unquoted) for a repository inside root.
func uploadPackPath(command, root string) (string, error) {
	name, argument, found := strings.Cut(command, " ")
	if !found || name != "git-upload-pack" {
		return "", fmt.Errorf("only git-upload-pack is served, not %q", command)
	}
	repository := filepath.Join(root, filepath.Clean("/"+strings.Trim(argument, "'\"")))
	if info, err := os.Stat(repository); err != nil || !info.IsDir() {
		return "", fmt.Errorf("no repository %s", argument)
	}
	return repository, nil
}

func exit(channel ssh.Channel, status int) {
	payload := make([]byte, 4)
	binary.BigEndian.PutUint32(payload, uint32(status))
	_, _ = channel.SendRequest("exit-status", false, payload)
}
