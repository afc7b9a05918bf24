-- wrk: POST the body in $BODY_FILE as a form, like Alipay does.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
