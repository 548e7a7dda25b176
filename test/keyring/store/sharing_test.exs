defmodule Keyring.Store.SharingTest do
  # Sharing into keyrings, pinning, and the rule a provider applies before
  # serving a peer: shared in a keyring both are in.
  use ExUnit.Case, async: true

  alias Keyring.Identity.NodeId
  alias Keyring.Store
  alias Keyring.Test.TmpDir

  setup context do
    name = Module.concat(__MODULE__, "K#{context.line}")
    start_supervised!({Keyring, name: name, data_dir: TmpDir.new()})
    %{k: [instance: name]}
  end

  @ring_a :crypto.strong_rand_bytes(32)
  @ring_b :crypto.strong_rand_bytes(32)

  test "a member of one keyring guessing another keyring's cids is refused", %{k: k} do
    {:ok, report} = Store.put(:crypto.strong_rand_bytes(40_000), k ++ [share: @ring_a])
    {:ok, secret} = Store.put("keyring B's secret", k ++ [share: {@ring_b, "secret"}])
    {:ok, private} = Store.put("not shared anywhere", k)

    assert Store.shared_in?(report, @ring_a, k)
    assert Store.shared_in?(secret, @ring_b, k)
    # The guesses: the same answer as for a cid that does not exist.
    refute Store.shared_in?(secret, @ring_a, k)
    refute Store.shared_in?(private, @ring_a, k)
    refute Store.shared_in?(Keyring.Store.Cid.of("no such blob"), @ring_a, k)
    # Keyring ids work in their text form too.
    assert Store.shared_in?(report, NodeId.encode(@ring_a), k)
  end

  test "share, unshare and tags: named tags move, anonymous ones are one per cid", %{k: k} do
    {:ok, v1} = Store.put("v1", k)
    {:ok, v2} = Store.put("v2", k)
    assert {:ok, nil} = Store.share(v1, @ring_a, k)
    assert {:ok, ^v1} = Store.share(v1, @ring_a, k)
    assert {:ok, nil} = Store.share(v1, @ring_a, k ++ [name: "latest"])
    assert {:ok, ^v1} = Store.share(v2, @ring_a, k ++ [name: "latest"])
    assert Enum.sort(Store.tags(@ring_a, k)) == Enum.sort([{nil, v1}, {"latest", v2}])
    assert Store.shared_in?(v1, @ring_a, k), "its anonymous tag still shares it"
    assert {:ok, true} = Store.unshare(v1, @ring_a, k)
    assert {:ok, false} = Store.unshare(v1, @ring_a, k)
    refute Store.shared_in?(v1, @ring_a, k)
    # A named tag is only removed for the cid it names.
    assert {:ok, false} = Store.unshare(v1, @ring_a, k ++ [name: "latest"])
    assert {:ok, true} = Store.unshare(v2, @ring_a, k ++ [name: "latest"])
    assert Store.tags(@ring_a, k) == []
    assert %{shares: 0} = Store.stats(k)
  end

  test "pins keep blobs locally without sharing them", %{k: k} do
    {:ok, cid} = Store.put("mine", k ++ [pin: true])
    {:ok, named} = Store.put(:binary.copy("x", 30_000), k ++ [pin: "big one"])
    assert Enum.sort(Store.pins(k)) == Enum.sort([{nil, cid}, {"big one", named}])
    refute Store.shared_in?(cid, @ring_a, k)
    assert %{pins: 2, shares: 0} = Store.stats(k)
    assert {:ok, true} = Store.unpin(cid, k)
    assert {:ok, true} = Store.unpin(named, k ++ [name: "big one"])
    assert Store.pins(k) == []
  end

  test "a blob can be shared before it is stored", %{k: k} do
    data = :crypto.strong_rand_bytes(50_000)
    cid = Keyring.Store.Cid.of(data)
    assert {:ok, nil} = Store.share(cid, @ring_a, k)
    assert Store.shared_in?(cid, @ring_a, k)
    refute Store.has?(cid, k)
    assert {:ok, ^cid} = Store.put(data, k)
    assert {:ok, %{blobs: 0}} = Store.gc(k)
    assert {:ok, ^data} = Store.get(cid, k)
  end

  test "bad keyring ids and tag names raise", %{k: k} do
    {:ok, cid} = Store.put("x", k)
    assert_raise ArgumentError, ~r/keyring id/, fn -> Store.share(cid, "nope", k) end
    assert_raise ArgumentError, ~r/keyring id/, fn -> Store.put("y", k ++ [share: 42]) end
    assert_raise ArgumentError, ~r/tag name/, fn -> Store.pin(cid, k ++ [name: ""]) end

    assert_raise ArgumentError, ~r/tag name/, fn ->
      Store.pin(cid, k ++ [name: :binary.copy("n", 2000)])
    end
  end
end
