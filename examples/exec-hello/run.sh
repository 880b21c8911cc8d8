#!/bin/sh
# Hearth exec runtime example: the event arrives on stdin, stdout is the
# answer, stderr goes to the function's log.
name=$(cat)
echo "greeting ${name:-nobody} (request $HEARTH_REQUEST_ID)" >&2
printf 'hello, %s\n' "${name:-world}"
