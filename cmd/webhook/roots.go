package main

// CA roots compiled into the binary, used only where the system has none (the images carry no
// CA file): the AWS endpoints' certificates verify in a distroless or empty image.
import _ "golang.org/x/crypto/x509roots/fallback"
