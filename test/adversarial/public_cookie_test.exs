defmodule Keyring.Adversarial.PublicCookieTest do
  # Issue 8, item 1 (critical): `mix keyring.start` fell back to the public
  # cookie "keyring_secret", printed it, and listened on every interface; a
  # VM knowing only that cookie ran :os.cmd on the node and read its
  # identity key. Now the cookie is random (kept 0600 in .keyring/cookie)
  # and distribution listens on the node's host address only (loopback by
  # default). The victim here starts distribution exactly as the task does.
  use ExUnit.Case, async: true

  alias Keyring.Cluster.{Cookie, Distribution}
  alias Keyring.Test.{DistPeer, TmpDir}

  setup_all do
    dir = TmpDir.new()
    ExUnit.Callbacks.on_exit(fn -> File.rm_rf(dir) end)
    cookie_dir = Path.join(dir, ".keyring")

    victim = DistPeer.boot()
    {:ok, cookie, {:file, _}} = DistPeer.call(victim, Cookie, :resolve, [[dir: cookie_dir]])
    node = :"#{DistPeer.unique("victim")}@127.0.0.1"
    {:ok, info} = DistPeer.call(victim, Distribution, :start, [node, [cookie: cookie]])

    {:ok, _} = DistPeer.call(victim, Application, :ensure_all_started, [:keyring])
    # The refused handshakes are logged as errors there; keep the output clean.
    :ok = DistPeer.call(victim, Logger, :configure, [[level: :critical]])

    {:ok, _} =
      DistPeer.call(victim, Supervisor, :start_child, [
        Keyring.Application.Supervisor,
        {Keyring, data_dir: Path.join(dir, "data")}
      ])

    on_exit(fn -> DistPeer.stop(victim) end)
    %{victim: victim, node: node, info: info, cookie_dir: cookie_dir}
  end

  test "the generated cookie is random and private, never the old public one", ctx do
    path = Cookie.file(ctx.cookie_dir)
    cookie = path |> File.read!() |> String.trim()
    assert byte_size(cookie) == 52
    refute cookie == "keyring_secret"
    assert Bitwise.band(File.stat!(path).mode, 0o777) == 0o600
    assert Bitwise.band(File.stat!(ctx.cookie_dir).mode, 0o777) == 0o700
  end

  test "a VM knowing only the old public cookie can neither connect nor run :os.cmd", ctx do
    {attacker, _} = DistPeer.start_with_cookie_flag(DistPeer.unique("attacker"), "keyring_secret")
    on_exit(fn -> DistPeer.stop(attacker) end)

    assert DistPeer.call(attacker, :net_adm, :ping, [ctx.node]) == :pang
    assert DistPeer.call(attacker, Node, :connect, [ctx.node]) == false

    assert {:badrpc, _} =
             DistPeer.call(attacker, :rpc, :call, [ctx.node, :os, :cmd, [~c"id"], 5_000])

    identity = Path.join([Path.dirname(ctx.cookie_dir), "data", "identity.key"])

    assert {:badrpc, _} =
             DistPeer.call(attacker, :rpc, :call, [ctx.node, File, :read, [identity], 5_000])

    refute ctx.node in DistPeer.call(ctx.victim, Node, :list, [[:connected]])
  end

  test "the distribution port answers on loopback only", ctx do
    assert {:ok, {{127, 0, 0, 1}, port}} =
             DistPeer.call(ctx.victim, Distribution, :listen_address, [])

    assert port == ctx.info.port

    for ip <- DistPeer.other_local_addresses() do
      assert {:error, :econnrefused} = :gen_tcp.connect(ip, port, [], 2_000),
             "dist port #{port} reachable on #{:inet.ntoa(ip)}"
    end

    assert {:ok, socket} = :gen_tcp.connect({127, 0, 0, 1}, port, [], 2_000)
    :gen_tcp.close(socket)
  end

  test "a node started from the same checkout (the cookie file) connects and is served", ctx do
    friend = DistPeer.boot()
    on_exit(fn -> DistPeer.stop(friend) end)
    {:ok, cookie, _} = DistPeer.call(friend, Cookie, :resolve, [[dir: ctx.cookie_dir]])
    node = :"#{DistPeer.unique("friend")}@127.0.0.1"
    {:ok, _} = DistPeer.call(friend, Distribution, :start, [node, [cookie: cookie]])

    assert DistPeer.call(friend, :net_adm, :ping, [ctx.node]) == :pong

    id = DistPeer.call(ctx.victim, Keyring.Identity, :node_id, [])
    assert DistPeer.call(friend, :rpc, :call, [ctx.node, Keyring.Identity, :node_id, []]) == id
  end
end
