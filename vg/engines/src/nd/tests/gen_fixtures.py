#!/usr/bin/env python3
# Regenerates the built fixtures of fixtures.rs: `python3 gen_fixtures.py print` prints them,
# and every run writes /tmp/nd-expected.pcap for `tcpdump -nn -e -vvv -r` to check.
# Builds the ND engine's expected frames field by field, independently of smoltcp, and
# writes them to a pcap for tcpdump to check.
import struct, socket, sys
def a6(s): return socket.inet_pton(socket.AF_INET6, s)
def mac(s): return bytes(int(x,16) for x in s.split(':'))
def csum(data):
    if len(data)%2: data+=b'\0'
    s=sum(struct.unpack('!%dH'%(len(data)//2),data))
    while s>>16: s=(s&0xffff)+(s>>16)
    return (~s)&0xffff
def icmp6(src,dst,msg):
    ph=a6(src)+a6(dst)+struct.pack('!I3xB',len(msg),58)
    c=csum(ph+msg); return msg[:2]+struct.pack('!H',c)+msg[4:]
def ip6(src,dst,nh,hlim,payload,tc_fl=0):
    return struct.pack('!IHBB',(6<<28)|tc_fl,len(payload),nh,hlim)+a6(src)+a6(dst)+payload
def eth(dst,src,payload): return mac(dst)+mac(src)+b'\x86\xdd'+payload
GW_MAC='02:4e:47:00:00:07'; HOST_MAC='02:00:00:00:01:0a'
GW_LL='fe80::4e:47ff:fe00:7'; HOST_LL='fe80::ff:fe00:10a'
HOST='2001:db8:1:100::10'; ROUTER='2001:db8:ffff::1'; REMOTE='2001:db8:beef::1'
out={}
# RA, unicast to the host, answering its RS.
opts = b'\x01\x01'+mac(GW_MAC)
opts+= struct.pack('!BBHI',5,1,0,1450)
opts+= struct.pack('!BBBBIII',3,4,64,0xc0,86400,14400,0)+a6('2001:db8:1:100::')
opts+= struct.pack('!BBHI',25,3,0,1800)+a6('2001:db8:53::53')
names=b'\x04home\x04arpa\x00'; plen=(8+len(names)+7)//8*8
opts+= struct.pack('!BBHI',31,plen//8,0,1800)+names+b'\0'*(plen-8-len(names))
ra=struct.pack('!BBHBBHII',134,0,0,64,0x40,1800,0,0)+opts
out['RA_TO_HOST']=eth(HOST_MAC,GW_MAC,ip6(GW_LL,HOST_LL,58,255,icmp6(GW_LL,HOST_LL,ra)))
# The final RA of the same home, to all nodes.
opts0 = opts.replace(struct.pack('!BBBBIII',3,4,64,0xc0,86400,14400,0),struct.pack('!BBBBIII',3,4,64,0xc0,0,0,0))
opts0 = opts0.replace(struct.pack('!BBHI',25,3,0,1800),struct.pack('!BBHI',25,3,0,0)).replace(struct.pack('!BBHI',31,plen//8,0,1800),struct.pack('!BBHI',31,plen//8,0,0))
ra0=struct.pack('!BBHBBHII',134,0,0,64,0x40,0,0,0)+opts0
out['FINAL_RA']=eth('33:33:00:00:00:01',GW_MAC,ip6(GW_LL,'ff02::1',58,255,icmp6(GW_LL,'ff02::1',ra0)))
# DAD NS for the gateway's link-local address, and the defence.
ns=struct.pack('!BBHI',135,0,0,0)+a6(GW_LL)
out['DAD_NS_FOR_GW']=eth('33:33:ff:00:00:07',HOST_MAC,ip6('::','ff02::1:ff00:7',58,255,icmp6('::','ff02::1:ff00:7',ns)))
na=struct.pack('!BBHI',136,0,0,0xa0000000)+a6(GW_LL)+b'\x02\x01'+mac(GW_MAC)
out['DAD_DEFENCE']=eth('33:33:00:00:00:01',GW_MAC,ip6(GW_LL,'ff02::1',58,255,icmp6(GW_LL,'ff02::1',na)))
# Echo from the host's global address to the gateway's link-local address.
data=b'nerg-nd!'
echo=struct.pack('!BBHHH',128,0,0,0x1234,7)+data
out['ECHO_REQUEST']=eth(GW_MAC,HOST_MAC,ip6(HOST,GW_LL,58,64,icmp6(HOST,GW_LL,echo)))
rep=struct.pack('!BBHHH',129,0,0,0x1234,7)+data
out['ECHO_REPLY']=eth(HOST_MAC,GW_MAC,ip6(GW_LL,HOST,58,64,icmp6(GW_LL,HOST,rep)))
# UDP from the host to the internet with hop limit 1, and the time exceeded about it.
udp_payload=b'traceroute probe'
udp=struct.pack('!HHHH',33434,33435,8+len(udp_payload),0)+udp_payload
ph=a6(HOST)+a6(REMOTE)+struct.pack('!I3xB',len(udp),17)
udp=udp[:6]+struct.pack('!H',csum(ph+udp))+udp[8:]
probe=ip6(HOST,REMOTE,17,1,udp,tc_fl=0x00012345)
out['EXPIRING_UDP']=eth(GW_MAC,HOST_MAC,probe)
te=struct.pack('!BBHI',3,0,0,0)+probe
out['TIME_EXCEEDED']=eth(HOST_MAC,GW_MAC,ip6(ROUTER,HOST,58,64,icmp6(ROUTER,HOST,te)))
# A 1500-byte packet from the core to the host, and Packet Too Big (MTU 1450) to the core.
core_payload=bytes(i%251 for i in range(1500-40-8))
cudp=struct.pack('!HHHH',443,50000,8+len(core_payload),0)+core_payload
ph=a6(REMOTE)+a6(HOST)+struct.pack('!I3xB',len(cudp),17)
cudp=cudp[:6]+struct.pack('!H',csum(ph+cudp))+cudp[8:]
big=ip6(REMOTE,HOST,17,60,cudp)
out['CORE_BIG']=mac('02:00:00:00:0c:01')+mac('02:00:00:00:0c:02')+b'\x86\xdd'+big
ptb=struct.pack('!BBHI',2,0,0,1450)+big[:1232]
out['PACKET_TOO_BIG']=mac('02:00:00:00:0c:02')+mac('02:00:00:00:0c:01')+b'\x86\xdd'+ip6(ROUTER,REMOTE,58,64,icmp6(ROUTER,REMOTE,ptb))
# The NS the vG sends to resolve the host's global address.
ns2=struct.pack('!BBHI',135,0,0,0)+a6(HOST)+b'\x01\x01'+mac(GW_MAC)
out['NS_FOR_HOST']=eth('33:33:ff:00:00:10',GW_MAC,ip6(GW_LL,'ff02::1:ff00:10',58,255,icmp6(GW_LL,'ff02::1:ff00:10',ns2)))
with open('/tmp/nd-expected.pcap','wb') as f:
    f.write(struct.pack('<IHHiIII',0xa1b2c3d4,2,4,0,0,65535,1))
    for k,v in out.items(): f.write(struct.pack('<IIII',0,0,len(v),len(v))+v)
if len(sys.argv)>1:
    for k,v in out.items():
        if k in ('CORE_BIG','PACKET_TOO_BIG'): continue
        print(f"pub(super) const {k}: [u8; {len(v)}] = [")
        for j in range(0,len(v),14): print("    "+" ".join(f"0x{b:02x}," for b in v[j:j+14]))
        print("];")
