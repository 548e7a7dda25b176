Code.require_file("gateway_helpers.exs", __DIR__)

defmodule Keyring.Gateway.FencesTest do
  # Every fence of the gateway, attacked with raw requests against a running
  # node; after each attack an honest request is still answered.
  use ExUnit.Case, async: true

  import Keyring.GatewayHelpers
  alias Keyring.Test.HTTP

  setup do
    {:ok, gw: start_gateway(:fences, max_body: 4096)}
  end

  defp code(r), do: r.json["error"]["code"]

  test "a request from another Origin is refused", %{gw: gw} do
    r = HTTP.request(gw.port, "GET", "/v1/status", [{"origin", "http://evil.example"}])
    assert r.status == 403 and code(r) == "bad_origin"
    r = post(gw, "/v1/keyrings", %{"name" => "x"}, [{"origin", "http://evil.example"}])
    assert r.status == 403, "even with the token"
    assert serving?(gw)
  end

  test "a rebinding Host is refused", %{gw: gw} do
    r =
      HTTP.raw(
        gw.port,
        "GET /v1/status HTTP/1.1\r\nhost: attacker.example:#{gw.port}\r\nconnection: close\r\n\r\n"
      )

    assert r.status == 403 and code(r) == "bad_host"
    assert serving?(gw)
  end

  test "mutations without the token, or with a wrong one, are refused", %{gw: gw} do
    r =
      HTTP.request(
        gw.port,
        "POST",
        "/v1/keyrings",
        [{"content-type", "application/json"}],
        ~s({"name":"x"})
      )

    assert r.status == 401 and code(r) == "token_required"

    r =
      HTTP.request(
        gw.port,
        "POST",
        "/v1/keyrings",
        [
          {"content-type", "application/json"},
          {"authorization", "Bearer not-the-right-token-at-all"}
        ],
        ~s({"name":"x"})
      )

    assert r.status == 401 and code(r) == "bad_token"
    assert Keyring.Ring.list(instance: gw.name) == []
    assert serving?(gw)
  end

  test "mutations need application/json", %{gw: gw} do
    r =
      HTTP.request(
        gw.port,
        "POST",
        "/v1/keyrings",
        [{"content-type", "text/plain"}, HTTP.bearer(gw.token)],
        ~s({"name":"x"})
      )

    assert r.status == 415 and code(r) == "unsupported_media_type"
    assert serving?(gw)
  end

  test "an oversized body is refused", %{gw: gw} do
    r = post(gw, "/v1/keyrings", %{"name" => String.duplicate("x", 10_000)})
    assert r.status == 413 and code(r) == "body_too_large"
    assert serving?(gw)
  end

  test "malformed JSON is refused with where it broke", %{gw: gw} do
    r =
      HTTP.request(
        gw.port,
        "POST",
        "/v1/keyrings",
        [{"content-type", "application/json"}, HTTP.bearer(gw.token)],
        ~s({"name": "x")
      )

    assert r.status == 400 and code(r) == "malformed_json"
    assert r.json["error"]["message"] =~ "line 1"
    r = post(gw, "/v1/keyrings", ["not", "an", "object"])
    assert r.status == 400 and code(r) == "bad_request"
    r = post(gw, "/v1/keyrings", %{"name" => 42})
    assert r.status == 400 and r.json["error"]["message"] =~ "name"
    assert serving?(gw)
  end

  test "an unknown route is a JSON 404", %{gw: gw} do
    for path <- ["/v1/unknown", "/admin", "/v1/keyrings/a/b/c/d"] do
      r = get(gw, path)
      assert r.status == 404 and code(r) == "not_found", path
    end

    assert serving?(gw)
  end

  test "garbage on the socket gets a 400 and the node keeps serving", %{gw: gw} do
    r = HTTP.raw(gw.port, :crypto.strong_rand_bytes(300) <> "\r\n\r\n")
    assert r.status == 400
    assert serving?(gw)
  end

  test "a public bind needs the explicit option" do
    assert_raise ArgumentError, ~r/not loopback/, fn ->
      Keyring.Gateway.validate!(bind: "0.0.0.0")
    end

    assert Keyring.Gateway.validate!(bind: "0.0.0.0", public: true)[:public]
    assert_raise ArgumentError, ~r/token/, fn -> Keyring.Gateway.validate!(token: "short") end
  end

  test "a public gateway asks for the token on reads too" do
    gw = start_gateway(:public, bind: "0.0.0.0", public: true)
    assert %{status: 401} = get(gw, "/v1/status")
    assert %{status: 200} = get(gw, "/v1/status", [HTTP.bearer(gw.token)])
    assert %{status: 200} = get(gw, "/")
  end
end
