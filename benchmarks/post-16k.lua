-- POST a 16 KiB body to /echo; the upstream echoes it back.
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("x", 16384)
wrk.headers["Content-Type"] = "application/octet-stream"
