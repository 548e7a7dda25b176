defmodule Keyring.Cluster.Strategy.GossipTest do
  # Multicast on loopback works in our sandbox (multicast_loop on 127.0.0.1),
  # so the strategy hears its own announcements; crafted packets are sent by
  # unicast to its socket.
  use ExUnit.Case, async: false

  alias Keyring.Cluster.Strategy.Gossip
  alias Keyring.Native
  import Keyring.Test.Eventually

  @secret "0123456789abcdef-test-secret"

  setup_all do
    Keyring.Test.Distribution.ensure_started!()
    :ok
  end

  setup do
    dir = Keyring.Test.TmpDir.new("kr-gossip")
    name = :"GossipTest#{System.unique_integer([:positive])}"
    {:ok, sup} = Keyring.start_link(name: name, data_dir: dir)
    port = 42_000 + :rand.uniform(10_000)

    config = [
      secret: @secret,
      port: port,
      multicast_if: {127, 0, 0, 1},
      multicast_addr: {239, 255, 42, 99},
      interval: 60_000
    ]

    pid = start_supervised!({Gossip, instance: name, topology: :test, config: config})
    {:ok, _} = {:ok, sup}
    {:ok, gossip: pid, port: port, instance: name}
  end

  defp packet(opts) do
    {:ok, body} =
      Native.gossip_encode(
        Keyword.get(opts, :ts, System.os_time(:millisecond)),
        Keyword.get(opts, :nonce, :crypto.strong_rand_bytes(16)),
        :crypto.strong_rand_bytes(32),
        1,
        Keyword.get(opts, :cluster, "test"),
        Keyword.get(opts, :node, "ghost#{System.unique_integer([:positive])}@127.0.0.1")
      )

    body <> :crypto.mac(:hmac, :sha256, Keyword.get(opts, :secret, @secret), body)
  end

  defp send_udp(port, bytes) do
    {:ok, s} = :gen_udp.open(0, [:binary])
    :ok = :gen_udp.send(s, {127, 0, 0, 1}, port, bytes)
    :gen_udp.close(s)
  end

  defp wait_stat(gossip, key, n),
    do: eventually(fn -> Gossip.stats(gossip)[key] >= n end, 5_000, "#{key} >= #{n}")

  test "hears its own multicast announcement on loopback", %{gossip: g} do
    Gossip.announce(g)
    wait_stat(g, :own, 1)
  end

  test "accepts an authenticated announcement once and counts the replay", %{
    gossip: g,
    port: port
  } do
    p = packet(node: "ghost_ok@127.0.0.1")
    send_udp(port, p)
    wait_stat(g, :accepted, 1)
    send_udp(port, p)
    wait_stat(g, :replayed, 1)
    assert Gossip.stats(g).accepted == 1
  end

  test "drops junk, forged, foreign and stale packets without creating atoms",
       %{gossip: g, port: port} do
    unique = "never_atom_#{System.unique_integer([:positive])}"
    send_udp(port, packet(node: "#{unique}a@127.0.0.1", secret: "another-secret-of-16+"))
    send_udp(port, packet(node: "#{unique}b@127.0.0.1", cluster: "other"))
    send_udp(port, packet(node: "#{unique}c@127.0.0.1", ts: 1_000))
    send_udp(port, <<>>)
    send_udp(port, :crypto.strong_rand_bytes(200))
    send_udp(port, :binary.copy("KRGS", 200))
    good = packet(node: "#{unique}d@127.0.0.1")
    <<head::binary-size(byte_size(good) - 1), last>> = good
    send_udp(port, head <> <<Bitwise.bxor(last, 1)>>)

    wait_stat(g, :bad_mac, 2)
    wait_stat(g, :foreign, 1)
    wait_stat(g, :stale, 1)
    wait_stat(g, :junk, 2)
    assert Gossip.stats(g).accepted == 0
    assert Process.alive?(g)

    for suffix <- ~w(a b c d) do
      assert_raise ArgumentError, fn ->
        String.to_existing_atom("#{unique}#{suffix}@127.0.0.1")
      end
    end
  end

  test "rejects a short secret" do
    assert_raise ArgumentError, fn ->
      Gossip.init(instance: Keyring, topology: :t, config: [secret: "short"])
    end
  end
end
