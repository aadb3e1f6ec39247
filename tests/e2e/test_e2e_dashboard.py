"""The lender dashboard in real headless Chromium: login, portfolio, farm page (charts, alerts,
snapshots, birds), and tenancy (a lender cannot open another lender's farm). Screenshots go to
out/screenshots/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_kit import DAY, Farm, FarmFactory

from datasets.synth import HealthEvent

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def farms(local_api: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Farm, Farm]:
    make = FarmFactory(local_api, tmp_path_factory.mktemp("dash"))
    mine = make(lender="Dashboard Bank", seed=701, health_events=[HealthEvent(bird=5, state="dead", at_s=0.3 * DAY)])
    mine.run(mine.windows(0, 4))
    other = make(lender="Other Bank", seed=702)
    other.run(other.windows(0, 1))
    return mine, other


def _wait_ready(driver: Any, timeout: float = 20.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def _login(driver: Any, url: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/dashboard")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{url}/dashboard")
    box = driver.find_element(By.ID, "api-key")
    box.send_keys(key)
    driver.find_element(By.ID, "login-submit").click()


def _js_errors(driver: Any) -> list[str]:
    try:
        logs = driver.get_log("browser")
    except Exception:  # not every driver exposes the console log
        return []
    # 401 (the refused key) and 404 (another lender's farm) are the API answering as intended;
    # anything else SEVERE (a script error, a missing asset) is a page bug.
    expected = ("status of 401", "status of 404", "favicon")
    return [e["message"] for e in logs if e["level"] == "SEVERE" and not any(x in e["message"] for x in expected)]


def test_dashboard_is_offline_and_needs_a_key(local_api: Any, browser: Any, screenshot_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    html = local_api.call("GET", "/dashboard", expect=(200,))
    text = html.decode() if isinstance(html, bytes) else str(html)
    assert "http://" not in text and "https://" not in text, "the dashboard must not load anything remote"
    for asset in ("app.js", "charts.js", "style.css"):
        body = local_api.call("GET", f"/dashboard/static/{asset}", expect=(200,))
        assert b"cdn" not in body.lower() and b"https://" not in body
    from selenium.webdriver.support.ui import WebDriverWait

    _login(browser, local_api.url, "fk_nothere_wrongsecret")
    err = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "login-error"))
    assert "not accepted" in err.text
    browser.save_screenshot(str(screenshot_dir / "dashboard_login_refused.png"))


def test_portfolio_and_farm_page(farms: tuple[Farm, Farm], browser: Any, screenshot_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    mine, other = farms
    url = mine.api.url
    _login(browser, url, mine.tenant.lender_key)
    _wait_ready(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "#portfolio tbody tr")
    assert [r.get_attribute("data-loan") for r in rows] == [mine.tenant.loan_id]
    assert other.tenant.farm_id not in browser.page_source
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    assert cells[2].text.split()[0].isdigit()  # headcount
    assert "USD" in cells[3].text  # collateral value
    assert cells[5].text.endswith("%")  # LTV
    browser.save_screenshot(str(screenshot_dir / "dashboard_portfolio.png"))

    rows[0].find_element(By.CSS_SELECTOR, "a.farm-link").click()
    _wait_ready(browser)
    assert browser.current_url.endswith(f"/dashboard/farm/{mine.tenant.farm_id}")
    # Charts: headcount, mortality, weight, valuation and LTV, each with drawn data.
    for chart in ("chart-headcount", "chart-mortality", "chart-weight", "chart-valuation-0", "chart-ltv-0"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#{chart} svg.chart")
        assert int(svg.get_attribute("data-points")) >= 3, chart
        assert svg.find_elements(By.CSS_SELECTOR, "path.series"), chart
    mortality = browser.find_element(By.CSS_SELECTOR, "#kpi-mortality .value").text
    assert int(mortality) >= 1, "the dead bird is not on the dashboard"
    assert browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr[data-kind='mortality_spike']")
    birds = browser.find_elements(By.CSS_SELECTOR, "#birds tbody tr")
    assert len(birds) >= 10
    assert all(b.get_attribute("data-bird").startswith("bird-") for b in birds)
    # The latest annotated snapshot of each camera, fetched with the key and decoded by the browser.
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "const i = [...document.querySelectorAll('#snapshots img')];"
        "return i.length >= 2 && i.every(x => x.complete && x.naturalWidth > 0);"))
    browser.save_screenshot(str(screenshot_dir / "dashboard_farm.png"))
    assert _js_errors(browser) == []


def test_lender_cannot_open_another_lenders_farm(farms: tuple[Farm, Farm], browser: Any,
                                                 screenshot_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    mine, other = farms
    url = mine.api.url
    _login(browser, url, mine.tenant.lender_key)
    _wait_ready(browser)
    browser.get(f"{url}/dashboard/farm/{other.tenant.farm_id}")
    _wait_ready(browser)
    err = browser.find_element(By.ID, "error")
    assert err.get_attribute("data-status") == "404"
    assert "not in your portfolio" in err.text
    assert not browser.find_elements(By.ID, "charts")
    assert other.tenant.farm_id not in browser.find_element(By.ID, "main").text
    browser.save_screenshot(str(screenshot_dir / "dashboard_other_lenders_farm.png"))
    # The other lender does see it.
    _login(browser, url, other.tenant.lender_key)
    _wait_ready(browser)
    browser.get(f"{url}/dashboard/farm/{other.tenant.farm_id}")
    _wait_ready(browser)
    assert browser.find_element(By.ID, "farm-name").text
    assert not browser.find_elements(By.ID, "error")
    assert browser.find_elements(By.ID, "charts")
