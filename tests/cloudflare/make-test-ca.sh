#!/bin/sh
# Generates, into DIR, a throw-away test CA (ca.pem), a server certificate
# it signs for 127.0.0.1, ::1 and localhost (server.pem, server.key), and a
# second CA that signed nothing here (other-ca.pem), for the "untrusted
# certificate" test. Usage: make-test-ca.sh DIR
set -eu
dir=$1
cd "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=tunnelsync test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=tunnelsync other CA" -keyout other-ca.key -out other-ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile server.ext -out server.pem 2>/dev/null
chmod 644 ca.pem other-ca.pem server.pem
