Code.require_file("gateway_helpers.exs", __DIR__)

defmodule Keyring.Gateway.RESTTest do
  use ExUnit.Case, async: true

  import Keyring.GatewayHelpers
  alias Keyring.Test.HTTP

  setup do
    {:ok, gw: start_gateway(:rest)}
  end

  test "status, health and identity describe this node", %{gw: gw} do
    %{status: 200, json: status} = get(gw, "/v1/status")
    assert status["node"]["node_id"] == Keyring.Identity.node_id(instance: gw.name)
    assert status["node"]["addresses"]["gateway"] == gw.url
    assert status["store"]["blobs"] >= 0
    assert status["gateway"]["requests"] >= 1
    assert %{status: 200, json: %{"status" => "ok"}} = get(gw, "/v1/health")
    %{status: 200, json: id} = get(gw, "/v1/identity")

    assert id["public_key"] ==
             Base.encode16(Keyring.Identity.public_key(instance: gw.name), case: :lower)

    %{status: 200, json: %{"nodes" => [me]}} = get(gw, "/v1/presence")
    assert me["self"] and me["status"] == "up"
  end

  test "a keyring is created, listed, shown and invited to", %{gw: gw} do
    %{status: 201, json: ring} = post(gw, "/v1/keyrings", %{"name" => "ops"})
    assert ring["name"] == "ops" and ring["admin"]
    assert ring["total"] == 1 and ring["online"] == 1
    %{status: 200, json: %{"keyrings" => [listed]}} = get(gw, "/v1/keyrings")
    assert listed["id"] == ring["id"]

    assert %{status: 200, json: %{"log" => %{"length" => 1}}} =
             get(gw, "/v1/keyrings/#{ring["id"]}")

    assert %{status: 200, json: %{"members" => [_, _]}} =
             get(gw, "/v1/keyrings/#{ring["id"]}/members")

    assert %{status: 200, json: %{"connected" => []}} =
             get(gw, "/v1/keyrings/#{ring["id"]}/links")

    %{status: 201, json: %{"invite" => "kr1" <> _}} =
      post(gw, "/v1/keyrings/#{ring["id"]}/invites", %{"roles" => ["web"]})

    assert %{status: 404} = get(gw, "/v1/keyrings/not-an-id")
    # 52 characters of base32 that no key encodes to.
    assert %{status: 400} = get(gw, "/v1/keyrings/#{String.duplicate("b", 52)}")
    unknown = Keyring.Identity.NodeId.encode(:crypto.strong_rand_bytes(32))
    assert %{status: 404} = get(gw, "/v1/keyrings/#{unknown}")
  end

  test "blobs stream in and out, and a missing one is 404", %{gw: gw} do
    data = :crypto.strong_rand_bytes(5_000_000)

    up =
      HTTP.request(
        gw.port,
        "POST",
        "/v1/blobs",
        [{"content-type", "application/octet-stream"}, HTTP.bearer(gw.token)],
        data
      )

    assert up.status == 201
    cid = up.json["cid"]
    assert {:ok, ^cid} = Keyring.Store.put(data, instance: gw.name)
    assert up.json["size"] == 5_000_000
    down = get(gw, "/v1/blobs/#{cid}")
    assert down.status == 200
    assert down.headers["content-length"] == "5000000"
    assert down.body == data
    assert %{status: 200, json: %{"size" => 5_000_000}} = get(gw, "/v1/blobs/#{cid}/info")
    assert %{status: 404} = get(gw, "/v1/blobs/#{String.duplicate("0", 64)}")
    assert %{status: 404} = get(gw, "/v1/blobs/xyz")
    json_upload = post(gw, "/v1/blobs", %{"data" => "x"})
    assert json_upload.status == 415
  end

  test "refs are read and written, but never Keyring's own", %{gw: gw} do
    assert %{status: 200, json: %{"name" => "app/x", "value" => "1"}} =
             put(gw, "/v1/refs/app/x", %{"value" => "1"})

    assert %{status: 200, json: %{"value" => "1"}} = get(gw, "/v1/refs/app/x")

    assert %{status: 200, json: %{"refs" => [%{"name" => "app/x"}]}} =
             get(gw, "/v1/refs?prefix=app/")

    {:ok, _} = Keyring.Ring.create("hidden", instance: gw.name)
    %{json: %{"refs" => refs}} = get(gw, "/v1/refs")
    refute Enum.any?(refs, &String.starts_with?(&1["name"], "keyring/"))
    assert %{status: 403} = get(gw, "/v1/refs/keyring/rings/x")
    assert %{status: 403} = put(gw, "/v1/refs/keyring/peers/x", %{"value" => "evil"})
    assert %{status: 200, json: %{"deleted" => true}} = delete(gw, "/v1/refs/app/x")
    assert %{status: 404} = get(gw, "/v1/refs/app/x")
  end

  test "tasks are routed to a registered capability", %{gw: gw} do
    :ok = Keyring.Coordinator.register(:gw_upcase, {String, :upcase, []}, instance: gw.name)

    assert %{status: 200, json: %{"result" => "HELLO"}} =
             post(gw, "/v1/tasks/gw_upcase", %{"task" => "hello"})

    assert %{status: 404, json: %{"error" => %{"code" => "no_capability"}}} =
             post(gw, "/v1/tasks/nothing_here_#{System.unique_integer([:positive])}", %{})
  end

  test "transfers list what Keyring.Sync ran, in the mesh snapshot too", %{gw: gw} do
    {:ok, ring} = Keyring.Ring.create("xfer", instance: gw.name)
    nobody = {:crypto.strong_rand_bytes(32), "127.0.0.1:9"}
    cid = Keyring.Store.Cid.of("not here")

    {:ok, id} =
      Keyring.Sync.fetch(cid, keyring: ring, from: [nobody], async: true, instance: gw.name)

    %{status: 200, json: t} = get(gw, "/v1/transfers")
    assert t["available"] == true
    assert [x] = Enum.filter(t["transfers"], &(&1["id"] == id))
    assert x["cids"] == [cid] and x["blobs_total"] == 1 and x["reason"] == "fetch"
    assert x["stage"] in ["running", "stalled"]
    assert x["keyring"] == Keyring.Ring.encode_id(ring)
    assert %{json: %{"transfers" => %{"available" => true}}} = get(gw, "/v1/mesh")
  end

  test "unknown routes are 404 and known ones under another method 405", %{gw: gw} do
    assert %{status: 404, json: %{"error" => %{"code" => "not_found"}}} = get(gw, "/v1/nope")
    assert %{status: 404} = get(gw, "/elsewhere")

    r =
      HTTP.request(
        gw.port,
        "PUT",
        "/v1/status",
        [{"content-type", "application/json"}, HTTP.bearer(gw.token)],
        "{}"
      )

    assert r.status == 405 and r.headers["allow"] == "GET"
    assert %{status: 200, json: %{"routes" => routes}} = get(gw, "/v1")
    assert "POST /v1/blobs" in routes

    r =
      HTTP.request(
        gw.port,
        "POST",
        "/v1/keyrings",
        [{"content-type", "text/plain"}, HTTP.bearer(gw.token)],
        "x"
      )

    assert r.status == 415
    r = HTTP.request(gw.port, "PUT", "/v1/presence", [HTTP.bearer(gw.token)], "")
    assert r.status == 405, "a route that does not exist under PUT, whatever the body"
  end

  test "unknown arguments are refused, not ignored", %{gw: gw} do
    r = post(gw, "/v1/keyrings", %{"name" => "x", "nmae" => "typo"})
    assert r.status == 400 and r.json["error"]["message"] =~ "nmae"
    r = post(gw, "/v1/keyrings", %{"name" => "x"})
    %{"id" => id} = r.json
    r = post(gw, "/v1/keyrings/#{id}/invites", %{"roles" => ["Bad Role"]})
    assert r.status == 400 and r.json["error"]["message"] =~ "roles"
  end

  test "the token lives in a 0600 file in a 0700 directory", %{gw: gw} do
    dir = data_dir(gw.name)
    path = Path.join(dir, "gateway.token")
    assert File.read!(path) |> String.trim() == gw.token
    assert File.stat!(path).mode |> Bitwise.band(0o777) == 0o600
    assert File.stat!(dir).mode |> Bitwise.band(0o777) == 0o700
  end

  defp data_dir(name), do: Path.join(System.tmp_dir!(), Atom.to_string(name))
end
