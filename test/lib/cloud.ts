/** A mocked cloud whose values are realistic: a k0s-shaped admin kubeconfig, documentation-range IPs. */
import { MockCloud } from "../mocks";

/** What `k0s kubeconfig admin` prints: the server is the droplet's own address, not the reserved IP. */
export const K0S_ADMIN_KUBECONFIG = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ
    server: https://10.19.0.5:6443
  name: local
contexts:
- context:
    cluster: local
    namespace: default
    user: user
  name: Default
current-context: Default
kind: Config
preferences: {}
users:
- name: user
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ
    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVF
`;

export function mockCloud(overrides: Partial<MockCloud> = {}): MockCloud {
  return { adminKubeconfig: K0S_ADMIN_KUBECONFIG, reservedIp: "203.0.113.10", stackOutputs: {}, ...overrides };
}
