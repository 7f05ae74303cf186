def test_login_page_renders_in_chinese_by_default(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "登录" in response.get_data(as_text=True) or "Sign in" in response.get_data(as_text=True)


def test_world_builds(world, db):
    assert world["demands"]["a1"].occurrences
