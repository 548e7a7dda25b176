defmodule Mix.Tasks.Keyring.StartTest do
  # `mix keyring.start` as people run it: two terminals in one checkout find
  # each other through the generated cookie file; the cookie is never
  # printed; the seed's walkthrough with an explicit `--cookie
  # keyring_secret` on 127.0.0.1 keeps working.
  use ExUnit.Case, async: true

  alias Keyring.Cluster.{Cookie, Distribution}
  alias Keyring.Test.{DistPeer, MixNode, TmpDir}

  @moduletag timeout: 300_000

  defp start_pair(args) do
    dir = TmpDir.new("keyring-mix")
    one = MixNode.start(DistPeer.unique("mix_one"), ["--data-dir", Path.join(dir, "1") | args])
    on_exit(fn -> MixNode.stop(one) end)

    two =
      MixNode.start(
        DistPeer.unique("mix_two"),
        ["--data-dir", Path.join(dir, "2"), "--connect", Atom.to_string(one.node) | args]
      )

    on_exit(fn -> MixNode.stop(two) end)
    {one, two}
  end

  # An observer VM with `cookie` asks node `one` whom it is connected to.
  defp connected_nodes(one, cookie) do
    observer = DistPeer.boot()
    on_exit(fn -> DistPeer.stop(observer) end)
    name = :"#{DistPeer.unique("observer")}@127.0.0.1"
    {:ok, _} = DistPeer.call(observer, Distribution, :start, [name, [cookie: cookie]])

    Keyring.Test.Eventually.eventually(
      fn ->
        case DistPeer.call(observer, :rpc, :call, [one.node, Node, :list, [], 5_000]) do
          nodes when is_list(nodes) and length(nodes) >= 2 -> nodes
          _ -> nil
        end
      end,
      30_000,
      "the two nodes to connect"
    )
  end

  test "two nodes from one checkout share the generated cookie, which is never printed" do
    {one, two} = start_pair([])
    path = Cookie.file(Path.expand(".keyring"))
    cookie = path |> File.read!() |> String.trim()

    for n <- [one, two] do
      assert n.banner =~ "cookie       kept in .keyring/cookie (mode 0600)"
      assert n.banner =~ ~r/distribution 127\.0\.0\.1:\d+\n/
      refute n.banner =~ cookie
    end

    assert Bitwise.band(File.stat!(path).mode, 0o777) == 0o600
    assert Bitwise.band(File.stat!(Path.dirname(path)).mode, 0o777) == 0o700
    assert two.node in connected_nodes(one, String.to_atom(cookie))
    refute MixNode.output(one) =~ cookie
  end

  test "the walkthrough with an explicit --cookie keyring_secret on 127.0.0.1 still works" do
    {one, two} = start_pair(["--cookie", "keyring_secret"])

    for n <- [one, two] do
      assert n.banner =~ "cookie       from --cookie"
      refute n.banner =~ "keyring_secret"
    end

    assert two.node in connected_nodes(one, :keyring_secret)
  end
end
