# ruleid: scribe-network-outside-egress
# ruleid: scribe-network-outside-egress
import ssl

# ok: scribe-network-outside-egress
import urllib.parse
import urllib.request

# ruleid: scribe-network-outside-egress

# ruleid: scribe-network-outside-egress


def cases(url, ctx):
    # ruleid: scribe-network-outside-egress
    urllib.request.urlopen(url)
    # ok: scribe-network-outside-egress
    urllib.parse.quote(url)
    # ruleid: scribe-tls-verification-off
    client.post(url, verify=False)
    # ok: scribe-tls-verification-off
    client.post(url, verify="/etc/ssl/ca.pem")
    # ruleid: scribe-tls-verification-off
    ssl._create_unverified_context()
    # ruleid: scribe-tls-verification-off
    ctx.check_hostname = False
    # ruleid: scribe-tls-verification-off
    ctx.verify_mode = ssl.CERT_NONE
    # ok: scribe-tls-verification-off
    ctx.verify_mode = ssl.CERT_REQUIRED
