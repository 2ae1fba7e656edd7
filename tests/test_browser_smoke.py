"""The app opens in a real browser, shows its title and takes a ListOps expression."""

import re

import pytest
from browser import assert_no_exception, save_screenshot, wait_for_app_idle

DEFAULT_EXPRESSION = "[MAX 2 9 [MIN 4 7 ] 0 ]"
NEW_EXPRESSION = "[SM 1 2 [MED 3 4 5 ] ]"


@pytest.mark.browser
def test_app_opens_and_takes_an_expression(app_page):
    from playwright.sync_api import expect

    page = app_page
    expect(page).to_have_title(re.compile("RIR Explorer"))
    expect(page.get_by_role("heading", name="RIR Explorer")).to_be_visible()
    box = page.get_by_label("ListOps expression", exact=True)
    expect(box).to_have_value(DEFAULT_EXPRESSION)

    box.fill(NEW_EXPRESSION)
    box.press("Enter")  # commits the value and reruns the script
    wait_for_app_idle(page)

    expect(page.get_by_label("ListOps expression", exact=True)).to_have_value(NEW_EXPRESSION)
    assert_no_exception(page)
    shot = save_screenshot(page, "smoke-main-page")
    assert shot.stat().st_size > 0
