package testbed

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certConfig returns a client config that authenticates with a certificate signed
// by the control plane's CA: user name, then groups.
func (cp *ControlPlane) certConfig(user string, groups ...string) (*rest.Config, error) {
	cert, key, err := cp.pki.issue(pkix.Name{CommonName: user, Organization: groups}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("client certificate for %s: %w", user, err)
	}
	return &rest.Config{
		Host:            cp.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.caPEM, CertData: cert, KeyData: key},
		Timeout:         30 * time.Second,
	}, nil
}

// UserConfig returns a client config of a user who authenticates with a client
// certificate and has only what RBAC grants the name and groups.
func (cp *ControlPlane) UserConfig(user string, groups ...string) (*rest.Config, error) {
	return cp.certConfig(user, groups...)
}

// ServiceAccount creates the ServiceAccount namespace/name (and the namespace),
// binds it to a ClusterRole of exactly rules, waits until RBAC grants the first
// rule, and returns a client config with a token minted for it through the
// TokenRequest API, valid for ttl.
func (cp *ControlPlane) ServiceAccount(ctx context.Context, namespace, name string, rules []rbacv1.PolicyRule, ttl time.Duration) (*rest.Config, error) {
	kc, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return nil, err
	}
	if err := ensureNamespace(ctx, kc, namespace); err != nil {
		return nil, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := kc.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating ServiceAccount %s/%s: %w", namespace, name, err)
	}
	roleName := "polynet-test:" + namespace + ":" + name
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roleName}, Rules: rules}
	if _, err := kc.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating ClusterRole %s: %w", roleName, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: roleName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}},
	}
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating ClusterRoleBinding %s: %w", roleName, err)
	}
	if len(rules) > 0 {
		if err := waitAllowed(ctx, kc, "system:serviceaccount:"+namespace+":"+name, rules[0]); err != nil {
			return nil, err
		}
	}
	token, err := cp.Token(ctx, namespace, name, ttl)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            cp.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.caPEM},
		BearerToken:     token,
		Timeout:         30 * time.Second,
	}, nil
}

// Token mints a new token for an existing ServiceAccount.
func (cp *ControlPlane) Token(ctx context.Context, namespace, name string, ttl time.Duration) (string, error) {
	kc, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return "", err
	}
	secs := int64(ttl / time.Second)
	tr, err := kc.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// CAData is the PEM certificate of the control plane's CA, which a plugin needs to
// trust the apiserver (the in-cluster ca.crt).
func (cp *ControlPlane) CAData() []byte { return cp.pki.caPEM }

// waitAllowed polls a SubjectAccessReview until RBAC, which learns of new bindings
// through an informer, grants user the first verb and resource of rule.
func waitAllowed(ctx context.Context, kc kubernetes.Interface, user string, rule rbacv1.PolicyRule) error {
	if len(rule.Verbs) == 0 || len(rule.Resources) == 0 || len(rule.APIGroups) == 0 {
		return nil
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0], Namespace: "default",
		},
	}}
	for {
		got, err := kc.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err == nil && got.Status.Allowed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("RBAC never granted %s %s on %s: %w", user, rule.Verbs[0], rule.Resources[0], ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ensureNamespace(ctx context.Context, kc kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// WriteKubeconfig writes cfg (token or client certificate, with the CA embedded) as
// a kubeconfig file, the form in which a plugin conf's `kubeconfig` key names it.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	return clientcmd.WriteToFile(*kc, path)
}
