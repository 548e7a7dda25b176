defmodule Keyring.Adversarial.LogFloodTest do
  # Attack (issue 8, item 5): each LogUpdate frame, even an empty one, made
  # the single mesh process replay and re-verify the whole log; 3000 tiny
  # frames stalled every inbound call for ~17 s and delayed a
  # `remove_member` by 14 s. Now: the transport reads a peer's pushes at a
  # bounded rate (a push beyond it waits, holding one of the peer's few
  # streams), a push whose entries the node holds is dropped in Rust against
  # the verified ring (a decode and a hash lookup per entry; it never reaches
  # the BEAM), and calls are dispatched apart from membership. A member
  # floods the node with thousands of empty and stale pushes (real frames,
  # from its own mesh) while an honest member calls it.
  use ExUnit.Case, async: false

  import Keyring.Test.{Eventually, Instances}

  alias Keyring.{Native, Ring}

  @frames 4_000

  defp log_updates_seen(server) do
    receive do
      {:trace, ^server, :receive, {:keyring_mesh, {:log_update, _, _, _}}} ->
        1 + log_updates_seen(server)

      {:trace, ^server, :receive, _} ->
        log_updates_seen(server)
    after
      0 -> 0
    end
  end

  defp percentile(sorted, p),
    do: Enum.at(sorted, min(length(sorted) - 1, trunc(length(sorted) * p)))

  test "a member's LogUpdate flood costs the node O(1) per frame; calls and removal stay prompt" do
    [node, flooder, honest] = [
      start_instance(:node),
      start_instance(:flooder),
      start_instance(:honest)
    ]

    ring = ring_with(node, [flooder, honest])
    {:ok, stale} = Ring.log(ring, instance: node)
    :ok = Keyring.expose(:echo, fn x, _ -> x end, instance: node, keyring: ring)
    assert {:ok, 0} = Keyring.call(id(node), :echo, 0, instance: honest)
    assert {:ok, 0} = Keyring.call(id(node), :echo, 0, instance: flooder)

    server = Process.whereis(Keyring.Mesh.Server.server(node))
    :erlang.trace(server, true, [:receive])

    # The probe: a push with an entry the node does not hold reaches the
    # mesh process (so the trace below would see flood frames if they did).
    [genesis | _] = stale
    Native.mesh_push_log(mesh(flooder), ring, [genesis <> "x"])
    eventually(fn -> log_updates_seen(server) > 0 end, 5_000, "the probe push")

    # The flood: empty pushes and the whole (stale) log, thousands of times.
    flood =
      Task.async(fn ->
        for i <- 1..@frames do
          entries = if rem(i, 2) == 0, do: [], else: stale
          Native.mesh_push_log(mesh(flooder), ring, entries)
        end
      end)

    # Calls for two seconds: the node reads the flooder's pushes at its
    # rate meanwhile (its burst at once, then a few per second).
    until = System.monotonic_time(:millisecond) + 2_000

    latencies =
      Stream.repeatedly(fn ->
        t = System.monotonic_time(:microsecond)
        {:ok, :x} = Keyring.call(id(node), :echo, :x, instance: honest)
        System.monotonic_time(:microsecond) - t
      end)
      |> Enum.take_while(fn _ -> System.monotonic_time(:millisecond) < until end)

    Task.await(flood, 30_000)
    sorted = Enum.sort(latencies)
    p50 = percentile(sorted, 0.5)
    p99 = percentile(sorted, 0.99)

    # The victim removes the flooder while the flood is still queued at it.
    t = System.monotonic_time(:microsecond)
    {:ok, _} = Ring.remove_member(ring, key(flooder), instance: node)
    removal = System.monotonic_time(:microsecond) - t
    Process.sleep(500)
    seen = log_updates_seen(server)
    :erlang.trace(server, false, [:receive])

    IO.puts(
      "log flood: #{@frames} pushes; #{length(sorted)} honest calls p50 #{p50} us, p99 #{p99} us; " <>
        "remove_member #{div(removal, 1000)} ms; flood pushes reaching the mesh process: #{seen}"
    )

    assert seen == 0, "stale or empty pushes reached the mesh process"
    assert p99 < 50_000, "honest p99 #{p99} us under the flood"
    assert removal < 1_000_000, "remove_member took #{removal} us under the flood"

    # The node still serves its honest member, and refuses the flooder.
    assert {:ok, :ok} = Keyring.call(id(node), :echo, :ok, instance: honest)
    assert {:error, _} = Keyring.call(id(node), :echo, :ok, instance: flooder)
  end
end
