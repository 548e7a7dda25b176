defmodule Keyring.Adversarial.TlsDistributionTest do
  # The cluster plane between hosts: distribution over TLS 1.3 with mutual
  # verify_peer (`mix keyring.start --tls-dist`), certificates from a CA made
  # with openssl as the README shows. Two nodes with certificates from the
  # CA connect; a VM without a certificate, with one from another CA, or
  # speaking plain TCP cannot, even knowing the cookie.
  use ExUnit.Case, async: true

  alias Keyring.Cluster.Distribution
  alias Keyring.Test.{Certs, DistPeer, TmpDir}

  @moduletag :openssl

  setup_all do
    dir = TmpDir.new("keyring-tls")
    on_exit(fn -> File.rm_rf(dir) end)
    ca = Certs.ca(dir, "ca")
    rogue_ca = Certs.ca(dir, "rogue-ca")

    certs = %{
      a: Certs.node(dir, ca, "a"),
      b: Certs.node(dir, ca, "b"),
      rogue: Certs.node(dir, rogue_ca, "rogue")
    }

    cookie =
      :"c#{System.unique_integer([:positive])}#{Base.encode32(:crypto.strong_rand_bytes(10))}"

    tls = fn cert -> [certfile: cert.pem, keyfile: cert.key, cacertfile: ca] end

    b = start_tls(dir, "tls_b", tls.(certs.b), cookie)
    on_exit(fn -> DistPeer.stop(elem(b, 0)) end)
    %{dir: dir, ca: ca, rogue_ca: rogue_ca, certs: certs, cookie: cookie, tls: tls, b: b}
  end

  defp start_tls(dir, prefix, tls, cookie) do
    name = DistPeer.unique(prefix)
    {:ok, flags} = Distribution.tls_erl_args(tls, Path.join([dir, "opts", name <> ".conf"]))
    DistPeer.start(name, [cookie: cookie, tls: tls], flags)
  end

  test "two nodes with certificates from the cluster CA connect over TLS", ctx do
    {b_peer, b_node, b_info} = ctx.b
    assert b_info.tls
    assert b_info.address == {127, 0, 0, 1}

    {a_peer, _a_node, _} = start_tls(ctx.dir, "tls_a", ctx.tls.(ctx.certs.a), ctx.cookie)
    on_exit(fn -> DistPeer.stop(a_peer) end)

    assert DistPeer.call(a_peer, :net_adm, :ping, [b_node]) == :pong
    b_pid = DistPeer.call(b_peer, System, :pid, [])
    assert DistPeer.call(a_peer, :erpc, :call, [b_node, System, :pid, []]) == b_pid
  end

  test "a VM speaking plain TCP distribution cannot connect, even with the cookie", ctx do
    {_, b_node, _} = ctx.b
    {plain, _, _} = DistPeer.start(DistPeer.unique("plain"), cookie: ctx.cookie)
    on_exit(fn -> DistPeer.stop(plain) end)

    assert DistPeer.call(plain, :net_adm, :ping, [b_node]) == :pang
    assert {:badrpc, _} = DistPeer.call(plain, :rpc, :call, [b_node, :os, :cmd, [~c"id"], 5_000])
  end

  test "a VM with a certificate from another CA cannot connect", ctx do
    {_, b_node, _} = ctx.b
    # It trusts the cluster CA (so it would accept b), but its own
    # certificate is not the cluster CA's.
    tls = [certfile: ctx.certs.rogue.pem, keyfile: ctx.certs.rogue.key, cacertfile: ctx.ca]
    {rogue, _, _} = start_tls(ctx.dir, "rogue", tls, ctx.cookie)
    on_exit(fn -> DistPeer.stop(rogue) end)

    assert DistPeer.call(rogue, :net_adm, :ping, [b_node]) == :pang
  end

  test "a VM presenting no certificate cannot connect", ctx do
    {_, b_node, _} = ctx.b
    name = DistPeer.unique("nocert")
    optfile = Path.join([ctx.dir, "opts", name <> ".conf"])
    # A TLS client that checks the server but shows no certificate itself.
    opts = [
      client: [cacertfile: to_charlist(ctx.ca), verify: :verify_peer, versions: [:"tlsv1.3"]]
    ]

    File.write!(optfile, :io_lib.format(~c"~p.~n", [opts]))
    flags = ["-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile]

    peer = DistPeer.boot(flags)
    on_exit(fn -> DistPeer.stop(peer) end)

    {:ok, _} =
      DistPeer.call(peer, :net_kernel, :start, [:"#{name}@127.0.0.1", %{name_domain: :longnames}])

    true = DistPeer.call(peer, :erlang, :set_cookie, [ctx.cookie])

    assert DistPeer.call(peer, :net_adm, :ping, [b_node]) == :pang
  end

  test "TLS options are refused in a VM not started with TLS distribution", ctx do
    peer = DistPeer.boot()
    on_exit(fn -> DistPeer.stop(peer) end)
    node = :"#{DistPeer.unique("notls")}@127.0.0.1"

    assert {:error, :tls_needs_boot_flags} =
             DistPeer.call(peer, Distribution, :start, [
               node,
               [cookie: ctx.cookie, tls: ctx.tls.(ctx.certs.a)]
             ])

    refute DistPeer.call(peer, Node, :alive?, [])
  end
end
