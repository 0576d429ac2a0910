// Command pulumi-resource-kubernetes serves the upstream Kubernetes provider.
// Upstream's own main embeds files generated at release time that the module
// zip lacks; build.sh generates them next to a scratch copy of this file, so
// this package builds only through build.sh.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
