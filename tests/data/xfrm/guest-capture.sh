#!/bin/sh
# Runs INSIDE the user-mode Linux guest (see capture.sh): builds a real ESP
# setup in two network namespaces, passes traffic so that counters move,
# and records the kernel's XFRM messages with xfrm-capture.
# usage: guest-capture.sh XFRM_CAPTURE_TOOL OUTDIR
# The keys below are test keys made up for these fixtures, not secrets.
set -eu
tool=$1
out=$2
A="ip netns exec tsx-cap-a"
B="ip netns exec tsx-cap-b"
AEAD="rfc4106(gcm(aes))"
K1=0x6b31a9f05c27d8e4139b02fa77c4e6d15a0b8c3e
K2=0x2f84c6e19d3b70a5e8165cf27b09d3a4c1e65b7d
K3=0x93d7e2514af86c0b3e19a7d5c2f0648b71e3d9a6
K4=0xa1c3e5f7092b4d6f81a3c5e7f90b2d4f
K5=0x5e7a9cbed0f2143658799badcfe1f20314253647a8b9cadbecfd0e1f20314253
K6=0xd4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607
K7=0x0f1e2d3c4b5a69788796a5b4c3d2e1f0ffeeddcc

rm -f "$out"/sa-dump-*.bin "$out"/policy-dump-*.bin "$out"/event-*.bin
ip netns add tsx-cap-a
ip netns add tsx-cap-b
ip link add va netns tsx-cap-a type veth peer name vb netns tsx-cap-b
$A ip link set lo up
$B ip link set lo up
$A ip addr add 192.0.2.1/24 dev va
$B ip addr add 192.0.2.2/24 dev vb
$A ip link set va up
$B ip link set vb up

# Pair 1: transport-mode ESP for ICMP between the namespaces, with traffic.
for ns in tsx-cap-a tsx-cap-b; do
	X="ip netns exec $ns"
	$X ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1001 reqid 1500 \
		mode transport replay-window 32 aead "$AEAD" $K1 128
	$X ip xfrm state add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x1002 reqid 1500 \
		mode transport replay-window 32 aead "$AEAD" $K2 128
done
$A ip xfrm policy add src 192.0.2.1/32 dst 192.0.2.2/32 proto icmp dir out \
	tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 1500 mode transport
$A ip xfrm policy add src 192.0.2.2/32 dst 192.0.2.1/32 proto icmp dir in \
	tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 1500 mode transport
$B ip xfrm policy add src 192.0.2.2/32 dst 192.0.2.1/32 proto icmp dir out \
	tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 1500 mode transport
$B ip xfrm policy add src 192.0.2.1/32 dst 192.0.2.2/32 proto icmp dir in \
	tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 1500 mode transport
$A ping -c 3 -i 0.2 -W 2 192.0.2.2

# Pair 2 (one half): tunnel mode with if_id, mark, NAT-T encap, selector,
# every lifetime limit.
$A ip xfrm state add src 192.0.2.1 dst 192.0.2.3 proto esp spi 0x2001 reqid 1501 mode tunnel \
	replay-window 64 if_id 7 mark 0x10 mask 0xff aead "$AEAD" $K3 128 \
	encap espinudp 4500 4501 0.0.0.0 sel src 198.51.100.0/24 dst 203.0.113.0/24 \
	limit time-soft 3000 limit time-hard 3600 limit time-use-soft 600 limit time-use-hard 700 \
	limit byte-soft 1000000 limit byte-hard 2000000 limit packet-soft 1000 limit packet-hard 2000
# Pair 3 (one half): encryption + truncated authentication, output mark.
$A ip xfrm state add src 192.0.2.1 dst 192.0.2.4 proto esp spi 0x3001 reqid 1502 mode tunnel \
	enc "cbc(aes)" $K4 auth-trunc "hmac(sha256)" $K5 128 output-mark 0x20 mask 0xff
# IPv6 (loopback only).
$A ip xfrm state add src ::1 dst ::1 proto esp spi 0x6001 reqid 1503 mode transport \
	aead "$AEAD" $K6 128

$A "$tool" dump-sa "$out/sa-dump"
$A "$tool" dump-policy "$out/policy-dump"

# Notifications: a delete, an add, its soft and hard expiry.
ready=/tmp/xfrm-capture.ready
rm -f "$ready"
$A "$tool" events "$out/event" "$ready" 10 4 &
cap=$!
i=0
while [ ! -e "$ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
$A ip xfrm state delete src 192.0.2.1 dst 192.0.2.3 proto esp spi 0x2001 mark 0x10 mask 0xff
$A ip xfrm state add src 192.0.2.1 dst 192.0.2.5 proto esp spi 0x4001 reqid 1504 mode tunnel \
	if_id 9 aead "$AEAD" $K7 128 limit time-soft 1 limit time-hard 2
wait $cap
$A ip -s xfrm state
ip netns del tsx-cap-a
ip netns del tsx-cap-b
