# shellcheck shell=bash
# pki.sh: the cluster's certificates and kubeconfigs, made with openssl in
# bin/local-cluster/pki (EC P-256; the service-account key is RSA 2048) and
# bin/local-cluster/kubeconfig. It owns the cluster CA and the front-proxy
# CA; the apiserver's serving certificate (made again when its SANs change,
# say a new node IP); the client certificates of the admin, the kubelet, the
# apiserver's kubelet client, kube-controller-manager, kube-scheduler,
# kube-proxy and the front proxy; the kubelet's serving certificate; the
# service-account key pair; and one kubeconfig per client.
#
#   pki_up    make whatever is missing (idempotent)
#
# Sourced by hack/local-cluster.sh after lib.sh; runs nothing on its own.

# cert NAME CN O EKU [SANS] makes PKI/NAME.{key,crt} signed by the cluster CA
# unless it exists (and, for serving certs, already names every SAN).
cert() {
  local name=$1 cn=$2 o=$3 eku=$4 sans=${5:-} subj ext
  if [ -f "$PKI/$name.crt" ] && [ -f "$PKI/$name.key" ]; then
    if [ -z "$sans" ] || [ "$(openssl x509 -in "$PKI/$name.crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' \n' | sed 's/IPAddress:/IP:/g')" = "$sans" ]; then
      return 0
    fi
    log "certificate $name lacks the current SANs; making it again"
  fi
  subj="/CN=$cn"
  [ -z "$o" ] || subj="/O=$o$subj"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku"
  [ -z "$sans" ] || ext="$ext
subjectAltName=$sans"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ca=ca
  [ "$name" != front-proxy-client ] || ca=front-proxy-ca
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 825 -sha256 -extfile <(echo "$ext") -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr"
}

ca() { # ca NAME CN
  [ -f "$PKI/$1.crt" ] && [ -f "$PKI/$1.key" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

pki_up() {
  mkdir -p "$PKI" "$KCFG"
  chmod 700 "$PKI"
  log "certificates (openssl) in ${PKI#"$ROOT"/}"
  ca ca local-cluster-ca
  ca front-proxy-ca local-cluster-front-proxy-ca
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  # SANs in the order openssl prints them: DNS names first, then IPs.
  cert apiserver kube-apiserver "" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  cert front-proxy-client front-proxy-client "" clientAuth
  cert admin local-cluster-admin system:masters clientAuth
  cert kubelet "system:node:$NODE_NAME" system:nodes clientAuth
  cert kubelet-serving "$NODE_NAME" "" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  cert controller-manager system:kube-controller-manager "" clientAuth
  cert scheduler system:kube-scheduler "" clientAuth
  cert kube-proxy system:kube-proxy "" clientAuth
  chmod 600 "$PKI"/*.key

  local server="https://127.0.0.1:$APISERVER_PORT" name user
  for name in admin controller-manager scheduler kube-proxy kubelet; do
    case $name in
      admin) user=local-cluster-admin ;;
      kubelet) user="system:node:$NODE_NAME" ;;
      *) user="system:$name" ;;
    esac
    sed -e "s|@STATE@|$STATE|g" -e "s|@SERVER@|$server|g" -e "s|@USER@|$user|g" -e "s|@CERT@|$name|g" \
      "$HERE/kubeconfig.in" >"$KCFG/$name.kubeconfig"
    chmod 600 "$KCFG/$name.kubeconfig"
  done
}
