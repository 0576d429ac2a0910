// Command flux-install assembles Flux's install manifest offline, by the steps Flux's own release
// takes, with the same code: each controller's release artifacts (<name>.crds.yaml and
// <name>.deployment.yaml) are built with kustomize from the controller module's config/; flux2's
// manifests/bases are bundled against those local files instead of their GitHub download URLs (what
// manifests/scripts/bundle.sh does); and flux2's own manifestgen renders the result, as
// `flux install --export --components=...` does.
//
//	flux-install -flux2 <flux2 module dir> -out install.yaml \
//	  -controller source-controller=<module dir> -controller kustomize-controller=<module dir> ...
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/fluxcd/flux2/v2/pkg/manifestgen/install"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// controllers keeps the -controller flags in the order given, which is the order of flux install's components.
type controllers []struct{ name, dir string }

func (c *controllers) String() string { return fmt.Sprint(*c) }

func (c *controllers) Set(value string) error {
	name, dir, ok := strings.Cut(value, "=")
	if !ok {
		return fmt.Errorf("want name=dir, got %q", value)
	}
	*c = append(*c, struct{ name, dir string }{name, dir})
	return nil
}

func main() {
	flux2 := flag.String("flux2", "", "directory of the github.com/fluxcd/flux2/v2 module")
	version := flag.String("version", "", "the Flux release, for example v2.7.3")
	out := flag.String("out", "", "where to write the install manifest")
	var modules controllers
	flag.Var(&modules, "controller", "name=dir of a controller module; repeat for each component, in install order")
	flag.Parse()
	if *flux2 == "" || *version == "" || *out == "" || len(modules) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := assemble(*flux2, *version, *out, modules); err != nil {
		fmt.Fprintln(os.Stderr, "flux-install:", err)
		os.Exit(1)
	}
}

// releaseURL matches the controller release downloads that flux2's bases list as resources.
var releaseURL = regexp.MustCompile(`https://github\.com/fluxcd/([a-z-]+)/releases/download/[^/]+/([a-z.-]+\.yaml)`)

func assemble(flux2, version, out string, modules controllers) error {
	work, err := os.MkdirTemp("", "flux-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bundle := filepath.Join(work, "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return err
	}

	components := make([]string, 0, len(modules))
	for _, module := range modules {
		base, err := localBase(flux2, work, module.name, module.dir)
		if err != nil {
			return err
		}
		if err := kustomizeTo(base, filepath.Join(bundle, module.name+".yaml")); err != nil {
			return err
		}
		components = append(components, module.name)
	}
	for _, part := range []string{"rbac", "policies"} {
		if err := kustomizeTo(filepath.Join(flux2, "manifests", part), filepath.Join(bundle, part+".yaml")); err != nil {
			return err
		}
	}

	options := install.MakeDefaultOptions()
	options.Version = version
	options.Components = components
	options.ManifestFile = "install.yaml"
	options.Timeout = time.Minute
	manifest, err := install.Generate(options, bundle)
	if err != nil {
		return err
	}
	return os.WriteFile(out, []byte(manifest.Content), 0o644)
}

// localBase copies flux2's base for one controller and points its release URLs at artifacts built
// from the controller module's config/, exactly as its release workflow builds them.
func localBase(flux2, work, name, module string) (string, error) {
	base := filepath.Join(work, "bases", name)
	if err := os.CopyFS(base, os.DirFS(filepath.Join(flux2, "manifests", "bases", name))); err != nil {
		return "", err
	}
	artifacts := map[string]string{
		name + ".crds.yaml":       filepath.Join(module, "config", "crd"),
		name + ".deployment.yaml": filepath.Join(module, "config", "manager"),
	}
	for file, config := range artifacts {
		if err := kustomizeTo(config, filepath.Join(base, file)); err != nil {
			return "", err
		}
	}
	kustomization := filepath.Join(base, "kustomization.yaml")
	text, err := os.ReadFile(kustomization)
	if err != nil {
		return "", err
	}
	var unknown []string
	local := releaseURL.ReplaceAllStringFunc(string(text), func(url string) string {
		parts := releaseURL.FindStringSubmatch(url)
		if parts[1] != name || artifacts[parts[2]] == "" {
			unknown = append(unknown, url)
		}
		return parts[2]
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("%s: flux2's base lists downloads this assembly does not build: %v", name, unknown)
	}
	if strings.Contains(local, "https://") {
		return "", fmt.Errorf("%s: flux2's base still has a remote resource after localising it", name)
	}
	return base, os.WriteFile(kustomization, []byte(local), 0o644)
}

func kustomizeTo(dir, file string) error {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	text, err := resources.AsYaml()
	if err != nil {
		return err
	}
	return os.WriteFile(file, text, 0o644)
}
