defmodule Keyring.Gateway.StatusPageBrowserTest do
  # The status page in a real headless browser (Debian's chromium driven by
  # playwright-core, test/browser/status_page.mjs): three nodes show up, a
  # killed one turns down within a second without a reload, and screenshots
  # land in _build/artifacts/.
  use ExUnit.Case, async: false

  alias Keyring.Test.Peers

  @moduletag :browser
  @moduletag timeout: 180_000
  @script Path.expand("../browser/status_page.mjs", __DIR__)
  @artifacts Path.expand("../../_build/artifacts", __DIR__)

  setup do
    peers =
      Peers.start_many(:page, 3,
        coordinator: [heartbeat: 1_000],
        instance_opts: [gateway: [port: 0]]
      )

    Peers.connect_all(peers)
    on_exit(fn -> Peers.stop_all(peers) end)
    {:ok, peers: peers}
  end

  test "three nodes show up, and a killed one turns down within a second without a reload", %{
    peers: peers
  } do
    [first, _second, victim] = peers
    Keyring.Test.Eventually.eventually(fn -> length(Peers.active_nodes(first)) == 3 end)
    url = Peers.call(first, Keyring.Gateway, :url, [])
    victim_id = Peers.call(victim, Keyring.Identity, :node_id, [])

    # A shared node whose page has two keyring members linked.
    {:ok, ring} = Peers.call(first, Keyring.Ring, :create, ["browser"])
    {:ok, invite} = Peers.call(first, Keyring.Ring, :invite, [ring])
    {:ok, ^ring} = Peers.call(Enum.at(peers, 1), Keyring, :join, [invite])

    File.mkdir_p!(@artifacts)

    port =
      Port.open(
        {:spawn_executable, System.find_executable("node")},
        [:binary, :exit_status, {:line, 65_536}, args: [@script, url, @artifacts, "3"]]
      )

    up = next(port)
    assert up["event"] == "up", inspect(up)
    assert length(up["rows"]) == 3
    assert Enum.all?(up["rows"], &(&1["status"] == "up"))

    Port.command(port, "watch #{victim_id}\n")
    assert %{"event" => "armed"} = next(port)
    Peers.kill(victim)

    down = next(port)
    assert down["event"] == "down", inspect(down)
    assert down["elapsed_ms"] < 1_000, "turned down after #{down["elapsed_ms"]} ms"
    assert down["reloads"] == 0
    assert down["topology_status"] == "down"
    assert down["up_now"] == 2
    assert down["page_errors"] == []

    # Content moving: the second node shares a blob into the keyring, the
    # first fetches it; the first's page shows the transfer, live.
    second = Enum.at(peers, 1)
    blob = :crypto.strong_rand_bytes(3_000_000)
    {:ok, cid} = Peers.call(second, Keyring.Store, :put, [blob, [share: ring]])
    second_id = Peers.call(second, Keyring.Identity, :node_id, [])
    Port.command(port, "transfer\n")
    assert %{"event" => "transfer_armed"} = next(port)

    assert {:ok, %{stage: :done}} =
             Peers.call(first, Keyring.Sync, :fetch, [cid, [from: second_id, keyring: ring]])

    transfer = next(port)
    assert transfer["event"] == "transfer", inspect(transfer)
    assert transfer["text"] =~ "100%"
    assert transfer["reloads"] == 0
    assert transfer["page_errors"] == []

    done = next(port)
    assert done["event"] == "done"
    for shot <- done["screenshots"], do: assert(File.stat!(shot).size > 10_000)
  end

  defp next(port) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        case Keyring.Gateway.JSON.decode(line) do
          {:ok, %{"event" => "error"} = e} -> flunk("browser script failed: #{e["message"]}")
          {:ok, map} -> map
          _ -> next(port)
        end

      {^port, {:exit_status, status}} ->
        flunk("browser script exited with #{status}")
    after
      60_000 -> flunk("no answer from the browser script")
    end
  end
end
