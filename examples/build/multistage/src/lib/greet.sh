greet() {
	printf "%s, %s\n" "${GREETING:-hello}" "$1"
}
