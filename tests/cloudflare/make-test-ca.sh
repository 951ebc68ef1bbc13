#!/bin/sh
# Generates, into DIR, a throw-away test CA (ca.pem) with an intermediate
# CA it signs, a server certificate the intermediate signs for 127.0.0.1,
# ::1 and localhost (server.pem: the leaf, then the intermediate, the
# chain a server sends, as Cloudflare's API does; server.key), and a
# second CA that signed nothing here (other-ca.pem), for the "untrusted
# certificate" test. The root also in OpenSSL's trusted form, trusted for
# serverAuth (ca-trusted.pem) and rejected for it (ca-rejected.pem).
# Usage: make-test-ca.sh DIR
set -eu
dir=$1
cd "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=tunnelsync test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=tunnelsync other CA" -keyout other-ca.key -out other-ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=tunnelsync test intermediate CA" -keyout int.key -out int.csr 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >int.ext
openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile int.ext -out int.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA int.pem -CAkey int.key -CAcreateserial -days 2 \
	-extfile server.ext -out leaf.pem 2>/dev/null
cat leaf.pem int.pem >server.pem
openssl x509 -in ca.pem -addtrust serverAuth -trustout -out ca-trusted.pem
openssl x509 -in ca.pem -addreject serverAuth -trustout -out ca-rejected.pem
chmod 644 ca.pem other-ca.pem server.pem ca-trusted.pem ca-rejected.pem
