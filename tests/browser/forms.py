"""Drives the citizen form and the agent form in headless Chromium.

Run by tests/web_forms.rs against a gateway it started; prints one JSON
document of what the pages showed. Checks each page with axe-core (the
script file given by --axe) and reports its violations.

    forms.py --base http://127.0.0.1:PORT --instance NAME --token TOKEN \
             --axe axe.min.js --photo photo.jpg [--shots DIR]
"""

import argparse
import base64
import json
import os
import sys
import traceback

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("ADUAN_CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=412,1000",
                "--lang=id"):
        options.add_argument(arg)
    service = Service(os.environ.get("ADUAN_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


def axe(driver, source):
    """axe-core's violations on the current page: [(id, impact, targets)]."""
    driver.execute_script(source)
    driver.set_script_timeout(30)
    result = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        ".then(function (r) { done(r.violations.map(function (v) {"
        "  return [v.id, v.impact, v.nodes.map(function (n) { return n.target.join(' '); })];"
        "})); }, function (e) { done([['axe-error', String(e), []]]); });")
    return result


def shot(driver, shots, name):
    """The whole page, as tall as it is, into shots/name."""
    if not shots:
        return
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    picture = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    with open(os.path.join(shots, name), "wb") as f:
        f.write(base64.b64decode(picture["data"]))


def gone(element):
    """Whether `element`'s document was replaced. Chromium answers a node
    of a replaced document as stale, or, while the new one is being
    attached, with an inspector error: both mean gone."""
    try:
        element.is_enabled()
        return False
    except WebDriverException:
        return True


def follow(driver, element):
    """Clicks `element` and waits until the page it leads to has replaced
    this one (a click does not wait for the navigation it starts)."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(lambda d: gone(page))
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def settled(driver, read):
    """What `read(driver)` gives once the page holds still: read again while
    the browser says a node it found is no longer in the document."""
    return WebDriverWait(driver, 10, ignored_exceptions=[WebDriverException]).until(read)


def field(driver, name):
    return driver.find_element(By.NAME, name)


def citizen(driver, args, source, report):
    driver.get(f"{args.base}/lapor/{args.instance}")
    report["axe"]["citizen_form"] = axe(driver, source)
    report["citizen"]["geo_button_shown"] = driver.find_element(By.ID, "geo").is_displayed()
    shot(driver, args.shots, "lapor.png")

    # Sent without a description: the page says what to fix and keeps the rest.
    field(driver, "name").send_keys("Siti Rahayu")
    field(driver, "contact").send_keys("0812-3456-7890")
    Select(field(driver, "category")).select_by_value("JALAN-RUSAK")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    report["citizen"]["problems"] = settled(driver, lambda d: [
        a.get_attribute("href").split("#")[-1]
        for a in d.find_elements(By.CSS_SELECTOR, "#problems a")])
    report["citizen"]["kept_name"] = field(driver, "name").get_attribute("value")
    report["citizen"]["kept_category"] = Select(field(driver, "category")).first_selected_option.get_attribute("value")
    report["axe"]["citizen_errors"] = axe(driver, source)

    field(driver, "description").send_keys(
        "Lubang besar di Jl. Pajajaran depan SD Negeri 3, sudah dua minggu, "
        "motor sering jatuh saat hujan.")
    field(driver, "address").send_keys("Jl. Pajajaran No. 12, Bogor")
    field(driver, "photo").send_keys(os.path.abspath(args.photo))
    follow(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    report["citizen"]["tracking"] = settled(driver, lambda d: d.find_element(By.ID, "tracking").text)
    report["axe"]["citizen_accepted"] = axe(driver, source)


def agent(driver, args, source, report):
    driver.get(f"{args.base}/agent")
    report["axe"]["agent_sign_in"] = axe(driver, source)
    field(driver, "token").send_keys(args.token)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    report["axe"]["agent_form"] = axe(driver, source)

    def send(call_id):
        field(driver, "agent_id").send_keys("agt-017")
        field(driver, "agent_name").send_keys("Dewi Lestari")
        field(driver, "call_id").send_keys(call_id)
        field(driver, "caller_phone").send_keys("0857 1122 3344")
        field(driver, "caller_name").send_keys("Bambang Wijaya")
        field(driver, "category").send_keys("Air PDAM")
        field(driver, "transcript").send_keys(
            "Petugas: Selamat pagi, dengan layanan pengaduan.\n"
            "Penelepon: Air PDAM di Kelurahan Tegallega mati sejak kemarin sore.")
        driver.find_element(By.NAME, "turns").click()
        follow(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/agent'] button[type=submit]"))
        return settled(driver, lambda d: {
            "tracking": d.find_element(By.ID, "tracking").text,
            "duplicate": d.find_element(By.ID, "outcome").get_attribute("data-duplicate") == "true",
        })

    shot(driver, args.shots, "agent.png")
    report["agent"]["first"] = send(args.call_id)
    report["axe"]["agent_accepted"] = axe(driver, source)
    follow(driver, driver.find_element(By.LINK_TEXT, "Kirim transkrip lain"))
    report["agent"]["again"] = send(args.call_id)


def main():
    p = argparse.ArgumentParser()
    for name in ("base", "instance", "token", "axe", "photo", "call-id"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--shots")
    args = p.parse_args()
    with open(args.axe, encoding="utf-8") as f:
        source = f.read()
    report = {"citizen": {}, "agent": {}, "axe": {}}
    driver = browser()
    try:
        citizen(driver, args, source, report)
        agent(driver, args, source, report)
    except Exception as e:  # the test prints the page it stopped on
        report["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        report["where"] = traceback.format_exc().splitlines()[-12:]
        report["page"] = driver.page_source[:4000]
    finally:
        driver.quit()
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
