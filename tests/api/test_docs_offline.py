"""/docs works without the internet: every asset it loads is served by Zeren."""
import re


def test_docs_page_loads_only_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)\s*[=:]\s*["\']([^"\']+)["\']', page.text)
    urls += re.findall(r"url:\s*'([^']+)'", page.text)
    assets = [u for u in urls if not u.startswith("#")]
    assert assets, page.text
    for url in assets:
        assert not url.startswith(("http://", "https://", "//")), url
        assert client.get(url).status_code == 200, url


def test_no_cdn_docs_remain(client):
    assert client.get("/redoc").status_code == 404
